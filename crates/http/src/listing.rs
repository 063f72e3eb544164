//! List endpoints' query parameters, as RabbitMQ's management plugin takes them:
//! `sort` (a field, dotted for nested ones: `message_stats.publish`), `sort_reverse`,
//! `columns` (comma-separated, dotted allowed), and pagination (`page`, `page_size`,
//! `name` with `use_regex`). Without `page` the answer is a plain array and `name` is
//! ignored; with it, an object with `items` and the counts.
//!
//! Lists are built in two steps so that 100,000 queues stay cheap: items are light
//! handles with a fast sort key for the common fields, filtered and sorted as handles,
//! and only the page that is returned is rendered to JSON. Sorting by a field without a
//! fast key renders every item first.

use std::cmp::Ordering;
use std::collections::HashMap;

use axum::http::StatusCode;
use axum::response::Response;
use regex::RegexBuilder;
use serde_json::{Map, Value};

use crate::error::{json_response, ApiError};

/// The largest page RabbitMQ serves.
const MAX_PAGE_SIZE: usize = 500;
const DEFAULT_PAGE_SIZE: usize = 100;

/// Parsed list parameters.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub sort: Option<String>,
    pub sort_reverse: bool,
    pub columns: Option<Vec<Vec<String>>>,
    pub page: Option<usize>,
    pub page_size: usize,
    pub name: Option<String>,
    pub use_regex: bool,
}

impl ListQuery {
    pub fn parse(q: &HashMap<String, String>) -> Result<ListQuery, ApiError> {
        let page = match q.get("page") {
            None => None,
            Some(p) => Some(
                p.parse::<i64>()
                    .map_err(|_| ApiError::bad("Pagination parameters are invalid"))?,
            ),
        };
        let page_size = match q.get("page_size") {
            None => None,
            Some(p) => Some(
                p.parse::<i64>()
                    .map_err(|_| ApiError::bad("Pagination parameters are invalid"))?,
            ),
        };
        if let Some(p) = page {
            let size_ok = page_size.is_none_or(|s| (1..=MAX_PAGE_SIZE as i64).contains(&s));
            if p < 1 || !size_ok {
                return Err(ApiError::BadRequestNamed(
                    "invalid_pagination_parameters",
                    format!(
                        "Invalid pagination parameters: page number {p}, page size {}",
                        page_size.map_or("undefined".to_string(), |s| s.to_string())
                    ),
                ));
            }
        }
        let columns = q.get("columns").filter(|c| !c.is_empty()).map(|c| {
            c.split(',')
                .filter(|s| !s.is_empty())
                .map(|s| s.split('.').map(String::from).collect())
                .collect()
        });
        let truthy = |k: &str| q.get(k).is_some_and(|v| v == "true");
        Ok(ListQuery {
            sort: q.get("sort").filter(|s| !s.is_empty()).cloned(),
            sort_reverse: truthy("sort_reverse"),
            columns,
            page: page.map(|p| p as usize),
            page_size: page_size.map_or(DEFAULT_PAGE_SIZE, |s| s as usize),
            name: q.get("name").filter(|s| !s.is_empty()).cloned(),
            use_regex: truthy("use_regex"),
        })
    }
}

/// A value to sort on.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
pub enum SortKey<'a> {
    Num(f64),
    /// Atoms in Erlang's order sort between numbers and strings (false, true, undefined).
    Atom(&'static str),
    Str(&'a str),
}

impl SortKey<'_> {
    fn rank(&self) -> u8 {
        match self {
            SortKey::Num(_) => 0,
            SortKey::Atom(_) => 1,
            SortKey::Str(_) => 2,
        }
    }

    fn cmp(&self, o: &SortKey) -> Ordering {
        match (self, o) {
            (SortKey::Num(a), SortKey::Num(b)) => a.partial_cmp(b).unwrap_or(Ordering::Equal),
            (SortKey::Atom(a), SortKey::Atom(b)) => a.cmp(b),
            (SortKey::Str(a), SortKey::Str(b)) => a.as_bytes().cmp(b.as_bytes()),
            _ => self.rank().cmp(&o.rank()),
        }
    }

    pub fn bool(b: bool) -> SortKey<'static> {
        SortKey::Atom(if b { "true" } else { "false" })
    }

    pub fn num(n: impl Into<f64>) -> SortKey<'static> {
        SortKey::Num(n.into())
    }
}

fn value_key(v: Option<&Value>) -> SortKey<'_> {
    match v {
        None | Some(Value::Null) => SortKey::Atom("undefined"),
        Some(Value::Bool(b)) => SortKey::bool(*b),
        Some(Value::Number(n)) => SortKey::Num(n.as_f64().unwrap_or(0.0)),
        Some(Value::String(s)) => SortKey::Str(s),
        // Containers sort after everything, as tuples and lists do in Erlang.
        Some(_) => SortKey::Str("\u{10FFFF}"),
    }
}

fn get_path<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(*k))
}

/// Keeps only the given columns (each a path into nested objects).
pub fn prune(v: Value, columns: &[Vec<String>]) -> Value {
    let Value::Object(src) = v else { return v };
    let mut out = Map::new();
    for col in columns {
        let mut cur = &src;
        let mut found: Option<&Value> = None;
        for (i, k) in col.iter().enumerate() {
            match cur.get(k) {
                Some(Value::Object(m)) if i + 1 < col.len() => cur = m,
                Some(x) if i + 1 == col.len() => found = Some(x),
                _ => break,
            }
        }
        if let Some(x) = found {
            insert_path(&mut out, col, x.clone());
        }
    }
    Value::Object(out)
}

fn insert_path(m: &mut Map<String, Value>, path: &[String], v: Value) {
    if path.len() == 1 {
        m.insert(path[0].clone(), v);
        return;
    }
    let e = m
        .entry(path[0].clone())
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(inner) = e {
        insert_path(inner, &path[1..], v);
    }
}

/// How a list endpoint sees its items.
pub trait Listable {
    /// What `name` filters on.
    fn name(&self) -> &str;
    /// A fast sort key for `field`, if there is one (otherwise the rendered JSON is
    /// used).
    fn sort_key(&self, field: &str) -> Option<SortKey<'_>>;
    /// The item's JSON.
    fn render(&self) -> Value;
    /// Only these columns, when the item can make them without rendering everything
    /// (None: render and prune).
    fn render_columns(&self, _columns: &[Vec<String>]) -> Option<Value> {
        None
    }
}

/// Builds a list response: filter (when paginated), sort (by the requested field, else
/// by `default_sort`), paginate, render, prune columns.
pub fn respond<T: Listable>(
    items: Vec<T>,
    q: &ListQuery,
    default_sort: &[&str],
) -> Result<Response, ApiError> {
    let total = items.len();
    let mut items = items;
    if q.page.is_some() {
        if let Some(name) = &q.name {
            let re = RegexBuilder::new(&if q.use_regex {
                name.clone()
            } else {
                regex::escape(name)
            })
            .case_insensitive(true)
            .build();
            match re {
                Ok(re) => items.retain(|i| re.is_match(i.name())),
                // RabbitMQ answers an invalid regex with an empty page.
                Err(_) => items.clear(),
            }
        }
    }
    // As RabbitMQ: the requested field first, then the default order breaks ties.
    let mut sort_fields: Vec<&str> = q.sort.iter().map(String::as_str).collect();
    sort_fields.extend(
        default_sort
            .iter()
            .filter(|f| q.sort.as_deref() != Some(**f)),
    );
    // A field without a fast key: render everything and sort on the JSON.
    let fast = items.is_empty() || sort_fields.iter().all(|f| items[0].sort_key(f).is_some());
    let reverse = q.sort_reverse;
    let finish = |v: Value| match &q.columns {
        Some(c) => prune(v, c),
        None => v,
    };
    let rendered: Vec<Value>;
    let filtered = items.len();
    let (start, end) = match q.page {
        Some(page) => {
            let page_count = filtered.div_ceil(q.page_size);
            if page > 1 && page > page_count {
                return Err(ApiError::BadRequestNamed(
                    "page_out_of_range",
                    format!(
                        "Page out of range, page: {page} page size: {}, len: {filtered}",
                        q.page_size
                    ),
                ));
            }
            let start = (page - 1) * q.page_size;
            (start.min(filtered), (start + q.page_size).min(filtered))
        }
        None => (0, filtered),
    };
    if fast {
        // Keys are computed once per item, not once per comparison.
        let mut keyed: Vec<(Vec<SortKey>, usize)> = items
            .iter()
            .enumerate()
            .map(|(i, it)| {
                let keys = sort_fields
                    .iter()
                    .map(|f| it.sort_key(f).unwrap_or(SortKey::Atom("undefined")))
                    .collect();
                (keys, i)
            })
            .collect();
        if !sort_fields.is_empty() {
            keyed.sort_by(|(a, _), (b, _)| {
                let o = a
                    .iter()
                    .zip(b)
                    .map(|(x, y)| x.cmp(y))
                    .find(|o| *o != Ordering::Equal)
                    .unwrap_or(Ordering::Equal);
                if reverse {
                    o.reverse()
                } else {
                    o
                }
            });
        }
        let cols = q.columns.as_deref();
        rendered = keyed[start..end]
            .iter()
            .map(
                |&(_, i)| match cols.and_then(|c| items[i].render_columns(c)) {
                    Some(v) => v,
                    None => finish(items[i].render()),
                },
            )
            .collect();
    } else {
        let mut all: Vec<Value> = items.iter().map(Listable::render).collect();
        let paths: Vec<Vec<&str>> = sort_fields.iter().map(|f| f.split('.').collect()).collect();
        all.sort_by(|a, b| {
            let mut o = Ordering::Equal;
            for p in &paths {
                o = value_key(get_path(a, p)).cmp(&value_key(get_path(b, p)));
                if o != Ordering::Equal {
                    break;
                }
            }
            if reverse {
                o.reverse()
            } else {
                o
            }
        });
        rendered = all.drain(start..end).map(finish).collect();
    }
    let body = match q.page {
        None => Value::Array(rendered),
        Some(page) => {
            let item_count = rendered.len();
            serde_json::json!({
                "filtered_count": filtered,
                "item_count": item_count,
                "items": rendered,
                "page": page,
                "page_count": filtered.div_ceil(q.page_size),
                "page_size": q.page_size,
                "total_count": total,
            })
        }
    };
    Ok(json_response(StatusCode::OK, &body))
}

/// A list of already rendered JSON objects (small lists: users, permissions, policies).
pub struct JsonItem {
    pub value: Value,
    pub name_key: &'static str,
}

impl Listable for JsonItem {
    fn name(&self) -> &str {
        self.value
            .get(self.name_key)
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    fn sort_key(&self, _field: &str) -> Option<SortKey<'_>> {
        None
    }

    fn render(&self) -> Value {
        self.value.clone()
    }
}

/// Responds with a list of JSON objects, sorted by `default_sort` unless asked
/// otherwise.
pub fn respond_values(
    values: Vec<Value>,
    q: &ListQuery,
    name_key: &'static str,
    default_sort: &[&str],
) -> Result<Response, ApiError> {
    let items = values
        .into_iter()
        .map(|value| JsonItem { value, name_key })
        .collect();
    respond(items, q, default_sort)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prune_keeps_nested_columns() {
        let v = json!({"name": "q", "message_stats": {"publish": 3, "ack": 1}, "x": 1});
        let cols = vec![
            vec!["name".to_string()],
            vec!["message_stats".to_string(), "publish".to_string()],
            vec!["nope".to_string()],
        ];
        assert_eq!(
            prune(v, &cols),
            json!({"name": "q", "message_stats": {"publish": 3}})
        );
    }

    #[test]
    fn pagination_errors_match_rabbitmq() {
        let q = |s: &str| {
            let m: HashMap<String, String> = s
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            ListQuery::parse(&m)
        };
        assert!(
            matches!(q("page=0"), Err(ApiError::BadRequestNamed("invalid_pagination_parameters", r)) if r == "Invalid pagination parameters: page number 0, page size undefined")
        );
        assert!(matches!(
            q("page=1&page_size=501"),
            Err(ApiError::BadRequestNamed(..))
        ));
        assert!(matches!(q("page=x"), Err(ApiError::BadRequest(_))));
        assert_eq!(q("page=2&page_size=7").unwrap().page_size, 7);
    }
}
