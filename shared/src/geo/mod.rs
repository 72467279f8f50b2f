//! Approximate location of a client: country, region, city and the EU flag.
//! The IP used to find it is dropped right after the lookup.

pub mod mmdb;

use std::net::IpAddr;

/// Approximate location. Every field may be unknown.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Place {
    /// ISO 3166-1 alpha-2, upper case.
    pub country: Option<String>,
    pub region: Option<String>,
    pub city: Option<String>,
}

impl Place {
    /// Whether the country is an EU member state. Computed from our own list
    /// (not the platform's flag) so Workers and Spin agree.
    pub fn is_eu(&self) -> bool {
        self.country.as_deref().is_some_and(is_eu_country)
    }

    /// Drops values that are empty or absurdly long: platform data is
    /// trusted for meaning but not for shape.
    pub fn sanitized(self) -> Place {
        fn clean(v: Option<String>, max: usize) -> Option<String> {
            v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty() && s.len() <= max)
        }
        let country = self.country.as_deref().and_then(country_code);
        Place { country, region: clean(self.region, 128), city: clean(self.city, 128) }
    }
}

/// A platform's country value as an ISO 3166-1 alpha-2 code (two letters,
/// upper case), or `None`.
pub fn country_code(v: &str) -> Option<String> {
    let v = v.trim();
    (v.len() == 2 && v.bytes().all(|b| b.is_ascii_alphabetic())).then(|| v.to_ascii_uppercase())
}

const EU: [&str; 27] = [
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI",
    "SK",
];

pub fn is_eu_country(code: &str) -> bool {
    EU.iter().any(|c| c.eq_ignore_ascii_case(code))
}

/// Looks `ip` up in whichever of `dbs` covers its address family. Errors
/// from a damaged file mean "unknown": geo never fails a signup.
pub fn lookup<R: mmdb::ReadAt>(dbs: &[mmdb::Mmdb<R>], ip: IpAddr) -> Place {
    for db in dbs {
        if let Ok(Some(place)) = db.lookup(ip) {
            return to_place(place).sanitized();
        }
    }
    Place::default()
}

fn to_place(p: mmdb::Place) -> Place {
    Place { country: p.country, region: p.region, city: p.city }
}

/// The address to locate: IPv4-mapped IPv6 (`::ffff:a.b.c.d`) is looked up
/// as the IPv4 it is.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn country_codes_are_two_letters_upper_case() {
        for (v, code) in [("GB", Some("GB")), (" se ", Some("SE")), ("gbr", None), ("G1", None), ("", None), ("ÅÄ", None)] {
            assert_eq!(country_code(v).as_deref(), code, "{v:?}");
        }
        let p = Place { country: Some(" de".into()), region: Some("  ".into()), city: Some("Köln".into()) }.sanitized();
        assert_eq!((p.country.as_deref(), p.region, p.city.as_deref()), (Some("DE"), None, Some("Köln")));
    }

    #[test]
    fn eu_flag_follows_country() {
        let place = |c: &str| Place { country: Some(c.into()), ..Place::default() };
        assert!(place("DE").is_eu());
        assert!(place("se").is_eu());
        assert!(!place("GB").is_eu());
        assert!(!place("US").is_eu());
        assert!(!Place::default().is_eu());
    }

    #[test]
    fn sanitized_drops_malformed_values() {
        let p = Place { country: Some("gb".into()), region: Some("  ".into()), city: Some("x".repeat(500)) };
        assert_eq!(p.sanitized(), Place { country: Some("GB".into()), region: None, city: None });
        let p = Place { country: Some("G1".into()), ..Place::default() };
        assert_eq!(p.sanitized().country, None);
    }

    #[test]
    fn mapped_ipv6_is_looked_up_as_ipv4() {
        let ip: IpAddr = "::ffff:81.2.69.142".parse().unwrap();
        assert_eq!(canonical_ip(ip), "81.2.69.142".parse::<IpAddr>().unwrap());
    }
}
