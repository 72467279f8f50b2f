//! The oracle of the aggregate tests (native `functions/jobs/tests/aggregates.rs`
//! and e2e `aggregates.rs`): each table of schema/0014_aggregates.sql next
//! to the same rows counted afresh from fans, consent_events and
//! link_stats. Written apart from the migration's backfill, with other
//! SQL, so a mistake in one cannot hide behind the same mistake in the other.

/// (table, its rows, the recount). Both give the key columns and the
/// count, in the same order; a table holds no row whose count is 0.
pub const TABLES: &[(&str, &str, &str)] = &[
    (
        "agg_fan_status",
        "SELECT artist_id, status, n FROM agg_fan_status",
        "SELECT artist_id, status, count(*) FROM fans GROUP BY artist_id, status",
    ),
    (
        "agg_fan_place",
        "SELECT artist_id, country, region, city, n FROM agg_fan_place",
        "SELECT artist_id, ifnull(country, ''), ifnull(region, ''), ifnull(city, ''), count(*) FROM fans GROUP BY 1, 2, 3, 4",
    ),
    (
        "agg_fan_page",
        "SELECT artist_id, page_id, n FROM agg_fan_page",
        "SELECT artist_id, ifnull(source_page_id, ''), count(*) FROM fans GROUP BY 1, 2",
    ),
    (
        "agg_consent_daily",
        "SELECT artist_id, day, page_id, kind, n FROM agg_consent_daily",
        "SELECT artist_id, strftime('%Y-%m-%d', at / 1000, 'unixepoch'), ifnull(page_id, ''), kind, count(*) FROM consent_events GROUP BY 1, 2, 3, 4",
    ),
    (
        "agg_link_daily",
        "SELECT link_id, artist_id, day, kind, dim, value, n FROM agg_link_daily",
        "SELECT s.link_id, s.artist_id, s.day, s.kind, d.dim, \
           CASE d.dim WHEN 'all' THEN '' WHEN 'platform' THEN s.platform WHEN 'country' THEN s.country WHEN 'referrer' THEN s.referrer ELSE s.device END, \
           sum(s.count) \
         FROM link_stats s, (SELECT 'all' AS dim UNION ALL SELECT 'platform' UNION ALL SELECT 'country' UNION ALL SELECT 'referrer' UNION ALL SELECT 'device') d \
         GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(s.count) <> 0",
    ),
    (
        "agg_link_artist_daily",
        "SELECT artist_id, day, kind, platform, n FROM agg_link_artist_daily",
        "SELECT artist_id, day, kind, platform, sum(count) FROM link_stats GROUP BY 1, 2, 3, 4 HAVING sum(count) <> 0",
    ),
];

/// Every row of `sql` as `a|b|…|n`, sorted.
pub fn rows(conn: &rusqlite::Connection, sql: &str) -> Result<Vec<String>, String> {
    let mut stmt = conn.prepare(sql).map_err(|e| format!("{sql}: {e}"))?;
    let width = stmt.column_count();
    let mut out: Vec<String> = stmt
        .query_map([], |r| {
            (0..width)
                .map(|i| {
                    Ok(match r.get_ref(i)? {
                        rusqlite::types::ValueRef::Null => "NULL".to_owned(),
                        rusqlite::types::ValueRef::Integer(n) => n.to_string(),
                        rusqlite::types::ValueRef::Real(f) => f.to_string(),
                        rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => String::from_utf8_lossy(t).into_owned(),
                    })
                })
                .collect::<rusqlite::Result<Vec<_>>>()
                .map(|cells| cells.join("|"))
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| format!("{sql}: {e}"))?;
    out.sort();
    Ok(out)
}

/// Each table against its recount: the first difference, named, or Ok.
pub fn check(conn: &rusqlite::Connection) -> Result<(), String> {
    check_but(conn, &[])
}

/// [`check`], leaving out the artists in `skip` (a deleted workspace's
/// counts go at once while its fans wait for the purge).
pub fn check_but(conn: &rusqlite::Connection, skip: &[String]) -> Result<(), String> {
    for (table, held, recount) in TABLES {
        // Every table's key starts with the artist, but agg_link_daily's
        // with the link.
        let at = usize::from(*table == "agg_link_daily");
        let keep = |rows: Vec<String>| -> Vec<String> { rows.into_iter().filter(|r| !skip.iter().any(|a| r.split('|').nth(at) == Some(a))).collect() };
        let (held, recount) = (keep(rows(conn, held)?), keep(rows(conn, recount)?));
        if held != recount {
            let extra: Vec<&String> = held.iter().filter(|r| !recount.contains(r)).collect();
            let missing: Vec<&String> = recount.iter().filter(|r| !held.contains(r)).collect();
            return Err(format!("{table} differs from a recount: holds {extra:?} it should not, lacks {missing:?}"));
        }
    }
    Ok(())
}

/// Rows of `table` naming `artist` (its `artist_id` column).
pub fn of_artist(conn: &rusqlite::Connection, table: &str, artist: &str) -> Result<i64, String> {
    conn.query_row(&format!("SELECT count(*) FROM {table} WHERE artist_id = ?1"), [artist], |r| r.get(0)).map_err(|e| format!("{table}: {e}"))
}
