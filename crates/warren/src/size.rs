//! Sizes in RabbitMQ's configuration notation: SI units with a capital B are powers of
//! 1000 (`50MB`), IEC units and bare letters are powers of 1024 (`1GiB`, `1G`).

pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid size '{s}': expected a number with an optional unit"))?;
    let mult: f64 = match unit.trim() {
        "" => 1.0,
        "k" | "K" | "KiB" | "kiB" => 1024.0,
        "kB" | "KB" => 1e3,
        "M" | "m" | "MiB" => 1024.0 * 1024.0,
        "MB" => 1e6,
        "G" | "g" | "GiB" => 1024.0f64.powi(3),
        "GB" => 1e9,
        "T" | "TiB" => 1024.0f64.powi(4),
        "TB" => 1e12,
        other => return Err(format!("invalid size '{s}': unknown unit '{other}'")),
    };
    Ok((n * mult) as u64)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn rabbitmq_units() {
        assert_eq!(parse_size("50MB").unwrap(), 50_000_000);
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("2G").unwrap(), 2 << 30);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert_eq!(parse_size("100000GB").unwrap(), 100_000_000_000_000);
        assert!(parse_size("12XB").is_err());
        assert!(parse_size("MB").is_err());
    }
}
