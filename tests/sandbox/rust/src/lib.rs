//! Fixture: a tiny crate whose tests also try to read a planted fake secret (reported, not fatal).

pub fn add(a: u32, b: u32) -> u32 {
    a + b
}

#[cfg(test)]
mod tests {
    #[test]
    fn adds() {
        assert_eq!(super::add(2, 3), 5);
    }

    #[test]
    fn tries_the_secret() {
        let home = std::env::var("HOME").unwrap_or_default();
        match std::fs::read_to_string(format!("{home}/.ssh/id_rsa")) {
            Ok(text) => println!("SECRET-READ: {text}"),
            Err(err) => println!("secret not readable: {err}"),
        }
    }
}
