//! Topic routing on a trie of binding-key words (`*` one word, `#` zero or more), so a
//! publish walks the words of its routing key once instead of testing every binding.
//!
//! Words split on `.` exactly as RabbitMQ splits them: the empty key has no words, and
//! empty words (`a..b`) are words.

use std::collections::HashMap;

/// Splits a routing or binding key into words, RabbitMQ's way.
pub fn words(key: &str) -> impl Iterator<Item = &str> {
    let mut it = if key.is_empty() {
        None
    } else {
        Some(key.split('.'))
    };
    std::iter::from_fn(move || it.as_mut()?.next())
}

pub struct TopicTrie<T> {
    root: Node<T>,
}

struct Node<T> {
    children: HashMap<Box<str>, Node<T>>,
    values: Vec<T>,
}

impl<T> Default for Node<T> {
    fn default() -> Self {
        Node {
            children: HashMap::new(),
            values: Vec::new(),
        }
    }
}

impl<T> Default for TopicTrie<T> {
    fn default() -> Self {
        TopicTrie {
            root: Node::default(),
        }
    }
}

/// Path of a binding key in the trie. Runs of `#` are collapsed: `#.#` matches exactly
/// what `#` matches, and without collapsing a key like `#.#.#` costs exponential time.
fn path(key: &str) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for w in words(key) {
        if w == "#" && out.last() == Some(&"#") {
            continue;
        }
        out.push(w);
    }
    out
}

impl<T: PartialEq> TopicTrie<T> {
    pub fn insert(&mut self, binding_key: &str, value: T) {
        let mut node = &mut self.root;
        for w in path(binding_key) {
            node = node.children.entry(w.into()).or_default();
        }
        if !node.values.contains(&value) {
            node.values.push(value);
        }
    }

    /// Removes a value bound with `binding_key`; prunes emptied branches.
    pub fn remove(&mut self, binding_key: &str, value: &T) -> bool {
        fn rec<T: PartialEq>(node: &mut Node<T>, path: &[&str], value: &T) -> bool {
            match path.split_first() {
                None => {
                    let before = node.values.len();
                    node.values.retain(|v| v != value);
                    before != node.values.len()
                }
                Some((w, rest)) => {
                    let Some(child) = node.children.get_mut(*w) else {
                        return false;
                    };
                    let removed = rec(child, rest, value);
                    if child.values.is_empty() && child.children.is_empty() {
                        node.children.remove(*w);
                    }
                    removed
                }
            }
        }
        rec(&mut self.root, &path(binding_key), value)
    }

    /// Calls `f` for every value whose binding key matches `routing_key`. A value bound
    /// with several matching keys is reported once per key; callers deduplicate.
    pub fn matches<'a>(&'a self, routing_key: &str, f: &mut impl FnMut(&'a T)) {
        let ws: Vec<&str> = words(routing_key).collect();
        walk(&self.root, &ws, f);
    }
}

fn walk<'a, T>(node: &'a Node<T>, words: &[&str], f: &mut impl FnMut(&'a T)) {
    if let Some(hash) = node.children.get("#") {
        // `#` consumes zero or more words. Its node never has a `#` child (runs are
        // collapsed), so this loop does not nest on itself.
        for skip in 0..=words.len() {
            walk(hash, &words[skip..], f);
        }
    }
    match words.split_first() {
        None => node.values.iter().for_each(&mut *f),
        Some((w, rest)) => {
            if let Some(c) = node.children.get(*w) {
                walk(c, rest, f);
            }
            if let Some(c) = node.children.get("*") {
                walk(c, rest, f);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matching(bindings: &[&str], key: &str) -> Vec<String> {
        let mut t = TopicTrie::default();
        for b in bindings {
            t.insert(b, b.to_string());
        }
        let mut out = Vec::new();
        t.matches(key, &mut |v: &String| {
            if !out.contains(v) {
                out.push(v.clone())
            }
        });
        out.sort();
        out
    }

    #[test]
    fn star_is_one_word_hash_is_zero_or_more() {
        let b = [
            "#",
            "kern.*",
            "*.critical",
            "kern.#",
            "#.critical",
            "a.#.b",
            "#.#",
            "*",
            "",
        ];
        assert_eq!(
            matching(&b, "kern.critical"),
            vec!["#", "#.#", "#.critical", "*.critical", "kern.#", "kern.*"]
        );
        assert_eq!(matching(&b, "kern"), vec!["#", "#.#", "*", "kern.#"]);
        assert_eq!(matching(&b, ""), vec!["", "#", "#.#"]);
        assert_eq!(matching(&b, "a.b"), vec!["#", "#.#", "a.#.b"]);
        assert_eq!(matching(&b, "a.x.y.b"), vec!["#", "#.#", "a.#.b"]);
        assert_eq!(matching(&b, "a..b"), vec!["#", "#.#", "a.#.b"]);
    }

    #[test]
    fn remove_prunes_and_keeps_others() {
        let mut t = TopicTrie::default();
        t.insert("a.*", 1);
        t.insert("a.*", 2);
        assert!(t.remove("a.*", &1));
        assert!(!t.remove("a.*", &1));
        let mut got = vec![];
        t.matches("a.b", &mut |v| got.push(*v));
        assert_eq!(got, vec![2]);
        assert!(t.remove("a.*", &2));
        assert!(t.root.children.is_empty());
    }

    #[test]
    fn many_hashes_stay_cheap() {
        let key = "#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.x";
        let rk = vec!["w"; 200].join(".") + ".x";
        assert_eq!(matching(&[key], &rk), vec![key.to_string()]);
    }
}
