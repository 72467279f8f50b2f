//! Check of fuzz target `dashboard_csv`: the dashboard's CSV writer
//! (`functions/dashboard/src/csv.rs`, which writes every export). Compiled
//! by the fuzz crate and, through `#[path]`, by
//! `functions/dashboard/tests/fuzz_corpus.rs`, which replays the corpus.
//!
//! Input: rows separated by byte 0x1E, cells by 0x1F (invalid UTF-8 is
//! replaced, as the export's cells are always text).

use csv_core::{ReadRecordResult, Reader};
use dashboard::csv::Csv;

/// What is written reads back as the same rows, each cell as written
/// except for the `'` that neutralises a formula.
pub fn dashboard_csv(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let rows: Vec<Vec<&str>> = text.split('\u{1e}').map(|r| r.split('\u{1f}').collect()).collect();
    let mut csv = Csv::new();
    for row in &rows {
        csv.row(row.iter().copied());
    }
    let out = csv.finish();
    let back = read(&out);
    assert_eq!(back.len(), rows.len(), "records read back");
    for (row, got) in rows.iter().zip(&back) {
        // A lone empty cell is written as an empty line, which reads back as no record cells.
        if row.len() == 1 && row[0].is_empty() {
            continue;
        }
        let want: Vec<String> = row.iter().map(|c| if c.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{c}") } else { (*c).to_owned() }).collect();
        assert_eq!(&want, got, "a row reads back as written");
    }
}

fn read(mut input: &[u8]) -> Vec<Vec<String>> {
    let mut reader = Reader::new();
    let mut out = vec![0u8; input.len() + 16];
    let mut ends = vec![0usize; input.len() + 16];
    let mut rows = Vec::new();
    loop {
        let (res, nin, nout, nend) = reader.read_record(input, &mut out, &mut ends);
        input = &input[nin..];
        match res {
            ReadRecordResult::Record => {
                let mut start = 0;
                let cells = ends[..nend]
                    .iter()
                    .map(|&end| {
                        let cell = String::from_utf8_lossy(&out[start..end]).into_owned();
                        start = end;
                        cell
                    })
                    .collect();
                let _ = nout;
                rows.push(cells);
            }
            ReadRecordResult::End => return rows,
            ReadRecordResult::InputEmpty => {}
            ReadRecordResult::OutputFull | ReadRecordResult::OutputEndsFull => panic!("buffers sized to the input can't fill"),
        }
    }
}
