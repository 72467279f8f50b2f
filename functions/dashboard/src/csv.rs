//! RFC 4180 CSV for the fans export, written with `csv-core` (no
//! allocation per row) into one growing buffer.
//!
//! Cells that a spreadsheet would run as a formula (starting with `=`,
//! `+`, `-`, `@`, tab or CR) get a leading `'`, as OWASP advises: the
//! export is opened in spreadsheets far more often than parsed, and an
//! address such as `=cmd|…@x.io` is valid.

use csv_core::{WriteResult, Writer, WriterBuilder};

pub struct Csv {
    writer: Writer,
    pub out: Vec<u8>,
    first: bool,
}

impl Default for Csv {
    fn default() -> Csv {
        Csv::new()
    }
}

impl Csv {
    pub fn new() -> Csv {
        // CRLF line ends, as RFC 4180 has them.
        let writer = WriterBuilder::new().terminator(csv_core::Terminator::CRLF).build();
        Csv { writer, out: Vec::with_capacity(64 * 1024), first: true }
    }

    /// Writes one record.
    pub fn row<'a>(&mut self, cells: impl IntoIterator<Item = &'a str>) {
        for cell in cells {
            if !self.first {
                self.emit(|w, out| w.delimiter(out));
            }
            self.first = false;
            if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
                // One field call per cell: csv-core decides on quoting from
                // what it is given, so the prefix must travel with the text.
                self.field(&format!("'{cell}"));
            } else {
                self.field(cell);
            }
        }
        self.emit(|w, out| w.terminator(out));
        self.first = true;
    }

    fn field(&mut self, mut input: &str) {
        loop {
            let len = self.out.len();
            self.out.resize(len + input.len() * 2 + 8, 0);
            let (res, nin, nout) = self.writer.field(input.as_bytes(), &mut self.out[len..]);
            self.out.truncate(len + nout);
            input = &input[nin..];
            if res == WriteResult::InputEmpty {
                return;
            }
        }
    }

    fn emit(&mut self, f: impl Fn(&mut Writer, &mut [u8]) -> (WriteResult, usize)) {
        loop {
            let len = self.out.len();
            self.out.resize(len + 8, 0);
            let (res, n) = f(&mut self.writer, &mut self.out[len..]);
            self.out.truncate(len + n);
            if res == WriteResult::InputEmpty {
                return;
            }
        }
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.emit(|w, out| w.finish(out));
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_neutralises_and_keeps_utf8() {
        let mut c = Csv::new();
        c.row(["email", "city"]);
        c.row(["a,b@x.io", "Linköping"]);
        c.row(["=cmd|'/c calc'!A1@x.io", "say \"hi\""]);
        c.row(["+1@x.io", "-2"]);
        c.row(["@x", "\tTab"]);
        let text = String::from_utf8(c.finish()).unwrap();
        assert_eq!(text, "email,city\r\n\"a,b@x.io\",Linköping\r\n'=cmd|'/c calc'!A1@x.io,\"say \"\"hi\"\"\"\r\n'+1@x.io,'-2\r\n'@x,'\tTab\r\n");
    }
}
