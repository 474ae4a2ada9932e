//! A terminal screen model for reading codex's screen: cell text, the wrap flag of each row, the
//! cursor, which screen is shown, and whether a cell is drawn in ANSI colour 1 (codex's error
//! red). Nothing else (no bold, no background, no title, no scrollback).
//!
//! It behaves exactly as `vt100` 0.15.2 with its `vte` 0.11.1 parser does for those things (the
//! model hs-detect used before, and still offers as `--screen-model vt100`), quirks included:
//! the same parser states and UTF-8 decoding, the same wrapping, wide and combining characters,
//! scroll regions, origin mode, the same screens and saved cursors. `shared/tests/term_vs_vt100.rs`
//! compares the two after every chunk on every capture and on random streams. It is faster
//! because printable ASCII (most of what codex draws) is written straight into the row, numbers
//! in control sequences are read in a tight loop, and a cell is 8 bytes.
//!
//! Unlike vt100 it never panics, whatever the bytes (vt100 0.15 does on a one-row screen, a
//! wide character on two columns, a cursor restored outside the screen). Screens smaller than
//! 2 rows or 10 columns are made that size.

use std::collections::VecDeque;
use unicode_width::UnicodeWidthChar;

/// The smallest screen modelled.
pub const MIN_ROWS: u16 = 2;
pub const MIN_COLS: u16 = 10;

/// A cell's flags, as vt100 keeps them: the number of code points (0 to 6) in the low bits.
const COUNT: u8 = 0x0f;
const WIDE: u8 = 0x80;
const WIDE_CONT: u8 = 0x40;
/// Code points one cell holds at most (a character and its combining marks).
const MAX_POINTS: u8 = 6;

#[derive(Clone, Copy, Default)]
struct Cell {
    ch: char,
    /// Count, wide and continuation bits. Any bit set means "has contents" (as in vt100: a wide
    /// character's continuation cell counts, with empty text).
    flags: u8,
    /// Drawn with foreground colour index 1.
    red: bool,
}

impl Cell {
    fn count(self) -> u8 {
        self.flags & COUNT
    }
}

#[derive(Clone)]
struct Row {
    cells: Vec<Cell>,
    wrapped: bool,
    /// Combining marks of cells holding more than one code point: (column, marks).
    marks: Vec<(u16, [char; 5])>,
}

impl Row {
    fn new(cols: u16) -> Row {
        Row { cells: vec![Cell::default(); usize::from(cols)], wrapped: false, marks: Vec::new() }
    }

    fn cols(&self) -> u16 {
        self.cells.len() as u16
    }

    fn forget_marks(&mut self, col: u16) {
        if !self.marks.is_empty() {
            self.marks.retain(|m| m.0 != col);
        }
    }

    /// Empties cell `col`, keeping the given colour (vt100's `Cell::clear`).
    fn clear_cell(&mut self, col: u16, red: bool) {
        if let Some(c) = self.cells.get_mut(usize::from(col)) {
            let marks = c.count() > 1;
            *c = Cell { ch: c.ch, flags: 0, red };
            if marks {
                self.forget_marks(col);
            }
        }
    }

    fn set_cell(&mut self, col: u16, ch: char, wide: bool, red: bool) {
        if let Some(c) = self.cells.get_mut(usize::from(col)) {
            let marks = c.count() > 1;
            *c = Cell { ch, flags: 1 | if wide { WIDE } else { 0 }, red };
            if marks {
                self.forget_marks(col);
            }
        }
    }

    /// A combining mark on cell `col` (an empty cell gets a space first).
    fn append(&mut self, col: u16, mark: char) {
        let Some(c) = self.cells.get_mut(usize::from(col)) else { return };
        let n = c.count();
        if n >= MAX_POINTS {
            return;
        }
        if n == 0 {
            c.ch = ' ';
            c.flags += 1;
        }
        let n = c.count();
        c.flags += 1;
        let i = usize::from(n - 1);
        match self.marks.iter_mut().find(|m| m.0 == col) {
            Some(m) => m.1[i] = mark,
            None => {
                let mut m = ['\0'; 5];
                m[i] = mark;
                self.marks.push((col, m));
            }
        }
    }

    fn clear(&mut self, red: bool) {
        // Whole cells (`ch` is read only with contents): one wide store for several cells.
        self.cells.fill(Cell { ch: ' ', flags: 0, red });
        self.marks.clear();
        self.wrapped = false;
    }

    /// vt100's `Row::clear_wide`: the other half of a wide character at `col` is emptied.
    fn clear_wide(&mut self, col: u16) {
        let Some(c) = self.cells.get(usize::from(col)) else { return };
        let other = if c.flags & WIDE != 0 {
            col.checked_add(1)
        } else if c.flags & WIDE_CONT != 0 {
            col.checked_sub(1)
        } else {
            return;
        };
        if let Some(o) = other {
            let red = self.cells.get(usize::from(o)).is_some_and(|c| c.red);
            self.clear_cell(o, red);
        }
    }

    fn erase(&mut self, col: u16, red: bool) {
        let Some(c) = self.cells.get(usize::from(col)) else { return };
        let wide = c.flags & WIDE != 0;
        self.clear_wide(col);
        self.clear_cell(col, red);
        if Some(col) == self.cols().checked_sub(if wide { 2 } else { 1 }) {
            self.wrapped = false;
        }
    }

    /// `erase` for each column of `from..to`; a cell with nothing wide or combined in it is
    /// emptied in place (erase would do the same to it and nothing to its neighbours).
    fn erase_range(&mut self, from: u16, to: u16, red: bool) {
        let last = self.cols().checked_sub(1);
        let to = to.min(self.cols());
        let Some(cells) = self.cells.get_mut(usize::from(from)..usize::from(to)) else { return };
        if cells.iter().all(|c| c.flags & !1 == 0) {
            for c in cells {
                c.flags = 0;
                c.red = red;
            }
            if to > from && Some(to - 1) == last {
                self.wrapped = false;
            }
            return;
        }
        for col in from..to {
            let c = &mut self.cells[usize::from(col)];
            if c.flags & !1 == 0 {
                c.flags = 0;
                c.red = red;
                if Some(col) == last {
                    self.wrapped = false;
                }
            } else {
                self.erase(col, red);
            }
        }
    }

    fn insert_default(&mut self, col: u16) {
        let at = usize::from(col).min(self.cells.len());
        self.cells.insert(at, Cell::default());
        for m in &mut self.marks {
            if m.0 >= col {
                m.0 += 1;
            }
        }
        self.wrapped = false;
    }

    fn remove(&mut self, col: u16) {
        self.clear_wide(col);
        if usize::from(col) < self.cells.len() {
            self.cells.remove(usize::from(col));
            self.forget_marks(col);
            for m in &mut self.marks {
                if m.0 > col {
                    m.0 -= 1;
                }
            }
        }
        self.wrapped = false;
    }

    fn truncate(&mut self, len: u16) {
        self.cells.truncate(usize::from(len));
        self.marks.retain(|m| m.0 < len);
        self.wrapped = false;
        if let Some(last) = self.cells.last() {
            if last.flags & WIDE != 0 {
                let red = last.red;
                self.clear_cell(len - 1, red);
            }
        }
    }

    fn resize(&mut self, len: u16) {
        self.cells.resize(usize::from(len), Cell::default());
        self.marks.retain(|m| m.0 < len);
        self.wrapped = false;
    }

    fn contents(&self, col: u16, out: &mut String) {
        let Some(c) = self.cells.get(usize::from(col)) else { return };
        let n = c.count();
        if n == 0 {
            return;
        }
        out.push(c.ch);
        if n > 1 {
            if let Some(m) = self.marks.iter().find(|m| m.0 == col) {
                out.extend(&m.1[..usize::from(n - 1)]);
            }
        }
    }

    /// vt100's `Row::write_contents` over the whole row.
    fn text(&self) -> String {
        let mut out = String::with_capacity(self.cells.len());
        self.write_text(&mut out);
        out
    }

    /// Appends the row's text; whether any cell has contents.
    fn write_text(&self, out: &mut String) -> bool {
        let mut prev_wide = false;
        let mut prev_col = 0usize;
        for (col, c) in self.cells.iter().enumerate() {
            if prev_wide {
                prev_wide = false;
                continue;
            }
            prev_wide = c.flags & WIDE != 0;
            if c.flags != 0 {
                for _ in prev_col..col {
                    out.push(' ');
                }
                prev_col = prev_col.max(col);
                match c.count() {
                    1 => out.push(c.ch),
                    _ => self.contents(col as u16, out),
                }
                prev_col += if prev_wide { 2 } else { 1 };
            }
        }
        prev_col > 0
    }
}

#[derive(Clone, Copy, Default, PartialEq, Eq)]
struct Pos {
    row: u16,
    col: u16,
}

/// One screen (the normal or the alternate one): vt100's `Grid` without scrollback.
#[derive(Clone)]
struct Grid {
    rows: u16,
    cols: u16,
    pos: Pos,
    saved_pos: Pos,
    /// Empty until first shown (the alternate screen). A ring: a whole-screen scroll moves
    /// one row, not all of them.
    lines: VecDeque<Row>,
    /// Rows changed since [`Term::take_changed`] last looked (by position on the screen).
    changed: Vec<bool>,
    scroll_top: u16,
    scroll_bottom: u16,
    origin_mode: bool,
    saved_origin_mode: bool,
}

impl Grid {
    fn new(rows: u16, cols: u16) -> Grid {
        Grid {
            rows,
            cols,
            pos: Pos::default(),
            saved_pos: Pos::default(),
            lines: VecDeque::new(),
            scroll_top: 0,
            scroll_bottom: rows - 1,
            origin_mode: false,
            saved_origin_mode: false,
            changed: vec![true; usize::from(rows)],
        }
    }

    fn allocate(&mut self) {
        if self.lines.is_empty() {
            self.lines = VecDeque::from(vec![Row::new(self.cols); usize::from(self.rows)]);
        }
        self.mark_all();
    }

    fn mark(&mut self, row: u16) {
        if let Some(c) = self.changed.get_mut(usize::from(row)) {
            *c = true;
        }
    }

    fn mark_from(&mut self, row: u16) {
        for c in self.changed.iter_mut().skip(usize::from(row)) {
            *c = true;
        }
    }

    fn mark_all(&mut self) {
        self.mark_from(0);
    }

    fn clear(&mut self) {
        self.mark_all();
        self.pos = Pos::default();
        self.saved_pos = Pos::default();
        for r in &mut self.lines {
            r.clear(false);
        }
        self.scroll_top = 0;
        self.scroll_bottom = self.rows - 1;
        self.origin_mode = false;
        self.saved_origin_mode = false;
    }

    fn line(&mut self, row: u16) -> Option<&mut Row> {
        self.lines.get_mut(usize::from(row))
    }

    fn cell(&self, row: u16, col: u16) -> Cell {
        self.lines.get(usize::from(row)).and_then(|r| r.cells.get(usize::from(col))).copied().unwrap_or_default()
    }

    fn current(&mut self) -> Option<&mut Row> {
        self.lines.get_mut(usize::from(self.pos.row))
    }

    fn set_pos(&mut self, mut pos: Pos) {
        if self.origin_mode {
            pos.row = pos.row.saturating_add(self.scroll_top);
        }
        self.pos = pos;
        self.row_clamp_top(self.origin_mode);
        self.row_clamp_bottom(self.origin_mode);
        self.col_clamp();
    }

    fn in_scroll_region(&self) -> bool {
        self.pos.row >= self.scroll_top && self.pos.row <= self.scroll_bottom
    }

    fn row_clamp_top(&mut self, limit: bool) -> u16 {
        if limit && self.pos.row < self.scroll_top {
            let n = self.scroll_top - self.pos.row;
            self.pos.row = self.scroll_top;
            n
        } else {
            0
        }
    }

    fn row_clamp_bottom(&mut self, limit: bool) -> u16 {
        let bottom = if limit { self.scroll_bottom } else { self.rows - 1 };
        if self.pos.row > bottom {
            let n = self.pos.row - bottom;
            self.pos.row = bottom;
            n
        } else {
            0
        }
    }

    fn col_clamp(&mut self) {
        self.pos.col = self.pos.col.min(self.cols - 1);
    }

    fn row_inc_clamp(&mut self, n: u16) {
        let limit = self.in_scroll_region();
        self.pos.row = self.pos.row.saturating_add(n);
        self.row_clamp_bottom(limit);
    }

    fn row_inc_scroll(&mut self, n: u16) -> u16 {
        let limit = self.in_scroll_region();
        self.pos.row = self.pos.row.saturating_add(n);
        let lines = self.row_clamp_bottom(limit);
        if limit {
            self.scroll_up(lines);
            lines
        } else {
            0
        }
    }

    fn row_dec_clamp(&mut self, n: u16) {
        let limit = self.in_scroll_region();
        self.pos.row = self.pos.row.saturating_sub(n);
        self.row_clamp_top(limit);
    }

    fn row_dec_scroll(&mut self, n: u16) {
        let limit = self.in_scroll_region();
        let extra = n.saturating_sub(self.pos.row);
        self.pos.row = self.pos.row.saturating_sub(n);
        let lines = self.row_clamp_top(limit);
        self.scroll_down(lines.saturating_add(extra));
    }

    fn col_wrap(&mut self, width: u16, wrap: bool) {
        if self.pos.col > self.cols - width {
            let mut prev = self.pos;
            self.pos.col = 0;
            let scrolled = self.row_inc_scroll(1);
            prev.row = prev.row.saturating_sub(scrolled);
            let new_row = self.pos.row;
            self.mark(prev.row);
            if let Some(r) = self.line(prev.row) {
                r.wrapped = wrap && prev.row + 1 == new_row;
            }
        }
    }

    /// Moves the rows `top..=bottom` up by `n`; new blank rows come in at the bottom.
    fn scroll_up(&mut self, n: u16) {
        let n = n.min(self.rows - self.scroll_top);
        self.shift(n, true);
    }

    fn scroll_down(&mut self, n: u16) {
        self.shift(n, false);
        if let Some(r) = self.line(self.scroll_bottom) {
            if n > 0 {
                r.wrapped = false;
            }
        }
    }

    fn shift(&mut self, n: u16, up: bool) {
        let (top, bottom) = (usize::from(self.scroll_top), usize::from(self.scroll_bottom));
        if n == 0 || bottom >= self.lines.len() || top > bottom {
            return;
        }
        for c in &mut self.changed[top..=bottom] {
            *c = true;
        }
        let len = bottom - top + 1;
        let k = usize::from(n).min(len);
        let whole = top == 0 && bottom + 1 == self.lines.len();
        if up {
            if whole {
                self.lines.rotate_left(k);
            } else {
                self.lines.make_contiguous()[top..=bottom].rotate_left(k);
            }
            for r in self.lines.range_mut(bottom + 1 - k..=bottom) {
                r.clear(false);
            }
        } else {
            if whole {
                self.lines.rotate_right(k);
            } else {
                self.lines.make_contiguous()[top..=bottom].rotate_right(k);
            }
            for r in self.lines.range_mut(top..top + k) {
                r.clear(false);
            }
        }
    }

    fn new_row(&self) -> Row {
        Row::new(self.cols)
    }

    fn insert_lines(&mut self, n: u16) {
        self.mark_all();
        // Each round is vt100's; after as many rounds as there are rows, more change nothing.
        for _ in 0..n.min(self.rows) {
            let (b, p) = (usize::from(self.scroll_bottom), usize::from(self.pos.row));
            if b >= self.lines.len() {
                return;
            }
            self.lines.remove(b);
            let row = self.new_row();
            self.lines.insert(p.min(self.lines.len()), row);
            self.lines[b].wrapped = false;
        }
    }

    fn delete_lines(&mut self, n: u16) {
        self.mark_all();
        for _ in 0..n.min(self.rows.saturating_sub(self.pos.row)) {
            let (b, p) = (usize::from(self.scroll_bottom), usize::from(self.pos.row));
            let row = self.new_row();
            self.lines.insert((b + 1).min(self.lines.len()), row);
            if p < self.lines.len() {
                self.lines.remove(p);
            }
        }
    }

    fn set_scroll_region(&mut self, top: u16, bottom: u16) {
        let bottom = bottom.min(self.rows - 1);
        if top < bottom {
            self.scroll_top = top;
            self.scroll_bottom = bottom;
        } else {
            self.scroll_top = 0;
            self.scroll_bottom = self.rows - 1;
        }
        self.pos = Pos { row: self.scroll_top, col: 0 };
    }

    fn set_origin_mode(&mut self, on: bool) {
        self.origin_mode = on;
        self.set_pos(Pos::default());
    }

    fn erase_row_forward(&mut self, red: bool) {
        self.mark(self.pos.row);
        let (col, cols) = (self.pos.col, self.cols);
        if let Some(r) = self.current() {
            r.erase_range(col, cols, red);
        }
    }

    fn erase_row_backward(&mut self, red: bool) {
        self.mark(self.pos.row);
        let (col, cols) = (self.pos.col, self.cols);
        if let Some(r) = self.current() {
            r.erase_range(0, col.min(cols - 1) + 1, red);
        }
    }

    fn erase_all_forward(&mut self, red: bool) {
        self.mark_from(self.pos.row);
        let from = usize::from(self.pos.row) + 1;
        for r in self.lines.iter_mut().skip(from) {
            r.clear(red);
        }
        self.erase_row_forward(red);
    }

    fn erase_all_backward(&mut self, red: bool) {
        self.mark_all();
        let to = usize::from(self.pos.row);
        for r in self.lines.iter_mut().take(to) {
            r.clear(red);
        }
        self.erase_row_backward(red);
    }

    fn insert_cells(&mut self, n: u16) {
        self.mark(self.pos.row);
        let (pos, cols) = (self.pos, self.cols);
        let wide = pos.col < cols && self.cell(pos.row, pos.col).flags & WIDE_CONT != 0;
        let Some(r) = self.current() else { return };
        // More rounds than columns change nothing more.
        for _ in 0..n.min(cols + 1) {
            if wide {
                if let Some(c) = r.cells.get_mut(usize::from(pos.col)) {
                    c.flags &= !WIDE_CONT;
                }
            }
            r.insert_default(pos.col);
            if wide {
                if let Some(c) = r.cells.get_mut(usize::from(pos.col)) {
                    c.flags |= WIDE_CONT;
                }
            }
        }
        r.truncate(cols);
    }

    fn delete_cells(&mut self, n: u16) {
        self.mark(self.pos.row);
        let (pos, cols) = (self.pos, self.cols);
        let Some(r) = self.current() else { return };
        for _ in 0..n.min(cols.saturating_sub(pos.col)) {
            r.remove(pos.col);
        }
        r.resize(cols);
    }

    fn erase_cells(&mut self, n: u16, red: bool) {
        self.mark(self.pos.row);
        let (pos, cols) = (self.pos, self.cols);
        let Some(r) = self.current() else { return };
        r.erase_range(pos.col, pos.col.saturating_add(n).min(cols), red);
    }
}

/// The parser's state: vte 0.11's states (`Utf8` holds the code point being decoded).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Ground,
    Escape,
    EscapeIntermediate,
    CsiEntry,
    CsiParam,
    CsiIntermediate,
    CsiIgnore,
    DcsEntry,
    DcsParam,
    DcsIntermediate,
    DcsIgnore,
    DcsPassthrough,
    OscString,
    SosPmApcString,
    Utf8,
}

/// UTF-8 decoding states (utf8parse 0.2's).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Utf8 {
    Tail3,
    Tail2,
    Tail1,
    E0,
    Ed,
    F0,
    F4,
}

const MAX_PARAMS: usize = 32;
const MAX_INTERMEDIATES: usize = 2;

/// A control sequence's numbers, kept as vte keeps them: at most 32 numbers, each either a
/// parameter or a `:` subparameter of the one before.
#[derive(Clone)]
struct Params {
    values: [u16; MAX_PARAMS],
    /// For the first number of each parameter: how many numbers it has.
    groups: [u8; MAX_PARAMS],
    len: usize,
    current_sub: u8,
}

impl Params {
    fn clear(&mut self) {
        self.len = 0;
        self.current_sub = 0;
    }

    fn full(&self) -> bool {
        self.len == MAX_PARAMS
    }

    fn push(&mut self, v: u16) {
        self.groups[self.len - usize::from(self.current_sub)] = self.current_sub + 1;
        self.values[self.len] = v;
        self.current_sub = 0;
        self.len += 1;
    }

    fn extend(&mut self, v: u16) {
        self.groups[self.len - usize::from(self.current_sub)] = self.current_sub + 1;
        self.values[self.len] = v;
        self.current_sub += 1;
        self.len += 1;
    }

    /// Each parameter with its subparameters.
    fn iter(&self) -> impl Iterator<Item = &[u16]> + '_ {
        let mut i = 0;
        std::iter::from_fn(move || {
            if i >= self.len {
                return None;
            }
            let n = usize::from(self.groups[i]).max(1);
            let s = &self.values[i..(i + n).min(self.len)];
            i += n;
            Some(s)
        })
    }

    fn nth(&self, n: usize, default: u16) -> u16 {
        match self.iter().nth(n).and_then(|p| p.first().copied()).unwrap_or(0) {
            0 => default,
            v => v,
        }
    }
}

/// The foreground colour, as far as it matters: vt100's `Color` packed in a number.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Fg(u32);

impl Fg {
    const DEFAULT: Fg = Fg(0);
    fn idx(i: u8) -> Fg {
        Fg(0x100 | u32::from(i))
    }
    fn rgb(r: u8, g: u8, b: u8) -> Fg {
        Fg(0x100_0000 | u32::from(r) << 16 | u32::from(g) << 8 | u32::from(b))
    }
    fn red(self) -> bool {
        self == Fg::idx(1)
    }
}

/// The screen model. See the module's documentation.
#[derive(Clone)]
pub struct Term {
    normal: Grid,
    alternate: Grid,
    on_alternate: bool,
    fg: Fg,
    saved_fg: Fg,
    state: State,
    utf8: Utf8,
    point: u32,
    params: Params,
    param: u16,
    intermediates: [u8; MAX_INTERMEDIATES],
    n_intermediates: usize,
}

/// One cell of a [`Term`].
pub struct CellRef<'a> {
    row: &'a Row,
    col: u16,
}

impl CellRef<'_> {
    fn cell(&self) -> Cell {
        self.row.cells[usize::from(self.col)]
    }

    /// Its text: a character and its combining marks, or nothing.
    pub fn contents(&self) -> String {
        let mut s = String::new();
        self.row.contents(self.col, &mut s);
        s
    }

    /// Whether `contents` is the single character `c`.
    pub fn is(&self, c: char) -> bool {
        let cell = self.cell();
        cell.count() == 1 && cell.ch == c
    }

    /// Something is drawn here (a wide character's right half counts, with no text).
    pub fn has_contents(&self) -> bool {
        self.cell().flags != 0
    }

    pub fn is_wide(&self) -> bool {
        self.cell().flags & WIDE != 0
    }

    pub fn is_wide_continuation(&self) -> bool {
        self.cell().flags & WIDE_CONT != 0
    }

    /// Drawn in ANSI colour 1 (`ESC[31m`, `ESC[38;5;1m`): codex's error red.
    pub fn is_error_colour(&self) -> bool {
        self.cell().red
    }
}

impl Term {
    pub fn new(rows: u16, cols: u16) -> Term {
        let (rows, cols) = (rows.max(MIN_ROWS), cols.max(MIN_COLS));
        let mut normal = Grid::new(rows, cols);
        normal.allocate();
        Term {
            normal,
            alternate: Grid::new(rows, cols),
            on_alternate: false,
            fg: Fg::DEFAULT,
            saved_fg: Fg::DEFAULT,
            state: State::Ground,
            utf8: Utf8::Tail1,
            point: 0,
            params: Params { values: [0; MAX_PARAMS], groups: [0; MAX_PARAMS], len: 0, current_sub: 0 },
            param: 0,
            intermediates: [0; MAX_INTERMEDIATES],
            n_intermediates: 0,
        }
    }

    fn grid(&self) -> &Grid {
        if self.on_alternate {
            &self.alternate
        } else {
            &self.normal
        }
    }

    fn grid_mut(&mut self) -> &mut Grid {
        if self.on_alternate {
            &mut self.alternate
        } else {
            &mut self.normal
        }
    }

    pub fn size(&self) -> (u16, u16) {
        (self.grid().rows, self.grid().cols)
    }

    /// (row, col); col may be one past the last column (a character was just written there).
    pub fn cursor_position(&self) -> (u16, u16) {
        let p = self.grid().pos;
        (p.row, p.col)
    }

    pub fn alternate_screen(&self) -> bool {
        self.on_alternate
    }

    /// The row's text goes on in the next row (the terminal wrapped it).
    pub fn row_wrapped(&self, row: u16) -> bool {
        self.grid().lines.get(usize::from(row)).is_some_and(|r| r.wrapped)
    }

    /// The row's text: blank cells before drawn ones as spaces, nothing after the last drawn one.
    pub fn row_text(&self, row: u16) -> String {
        self.grid().lines.get(usize::from(row)).map(Row::text).unwrap_or_default()
    }

    /// Which rows of the screen shown changed since the last call (by position: a row that
    /// scrolled counts as changed where it left and where it arrived). Written into `rows`, one
    /// flag per row; all of them after the screen is switched or cleared.
    pub fn take_changed(&mut self, rows: &mut Vec<bool>) {
        let g = self.grid_mut();
        rows.clear();
        rows.resize(g.changed.len(), false);
        std::mem::swap(rows, &mut g.changed);
    }

    /// The whole screen's text: rows joined with a newline, except after a wrapped row (vt100's
    /// `Screen::contents`, which also writes one for an empty row below a wrapped one).
    pub fn contents(&self) -> String {
        let mut out = String::new();
        let mut wrapping = false;
        for r in &self.grid().lines {
            if !r.write_text(&mut out) && wrapping {
                out.push('\n');
            }
            if !r.wrapped {
                out.push('\n');
            }
            wrapping = r.wrapped;
        }
        out.truncate(out.trim_end_matches('\n').len());
        out
    }

    pub fn cell(&self, row: u16, col: u16) -> Option<CellRef<'_>> {
        let r = self.grid().lines.get(usize::from(row))?;
        (usize::from(col) < r.cells.len()).then_some(CellRef { row: r, col })
    }

    /// Reads the bytes; a sequence cut at the end goes on with the next call.
    pub fn process(&mut self, bytes: &[u8]) {
        let mut i = 0;
        let n = bytes.len();
        while i < n {
            let b = bytes[i];
            match self.state {
                State::Ground if (0x20..0x7f).contains(&b) => {
                    let run = bytes[i..].iter().position(|&b| !(0x20..0x7f).contains(&b)).unwrap_or(n - i);
                    self.print_ascii(&bytes[i..i + run]);
                    i += run;
                    continue;
                }
                State::Ground if b == 0x1b => {
                    if let Some(len) = self.csi_whole(&bytes[i..]) {
                        i += len;
                        continue;
                    }
                    self.step(b);
                }
                State::CsiParam | State::CsiEntry if b.is_ascii_digit() => {
                    if !self.params.full() {
                        // A run of digits: one number.
                        let mut v = self.param;
                        while i < n && bytes[i].is_ascii_digit() {
                            v = v.saturating_mul(10).saturating_add(u16::from(bytes[i] - b'0'));
                            i += 1;
                        }
                        self.param = v;
                        self.state = State::CsiParam;
                        continue;
                    }
                    self.step(b);
                }
                _ => self.step(b),
            }
            i += 1;
        }
    }

    /// A whole plain control sequence at the start of `bytes` (`ESC [`, an optional `?`-like
    /// prefix, numbers, a final byte), dispatched at once; its length. `None` (nothing done) for
    /// anything else: the bytes then go through [`Term::step`] one by one.
    fn csi_whole(&mut self, bytes: &[u8]) -> Option<usize> {
        if bytes.get(1) != Some(&b'[') {
            return None;
        }
        self.clear_sequence();
        let mut i = 2;
        if let Some(&p @ 0x3c..=0x3f) = bytes.get(i) {
            self.collect(p);
            i += 1;
        }
        let mut v: u16 = 0;
        loop {
            let b = *bytes.get(i)?;
            i += 1;
            match b {
                b'0'..=b'9' => v = v.saturating_mul(10).saturating_add(u16::from(b - b'0')),
                b';' | b':' if !self.params.full() => {
                    if b == b';' {
                        self.params.push(v);
                    } else {
                        self.params.extend(v);
                    }
                    v = 0;
                }
                0x40..=0x7e => {
                    self.param = v;
                    self.csi_dispatch(b);
                    return Some(i);
                }
                _ => return None,
            }
        }
    }

    /// One byte through vte's state table.
    fn step(&mut self, b: u8) {
        if self.state == State::Utf8 {
            self.utf8_byte(b);
            return;
        }
        // "Anywhere" transitions.
        match b {
            0x18 | 0x1a => {
                self.execute(b);
                self.state = State::Ground;
                return;
            }
            0x1b => {
                self.clear_sequence();
                self.state = State::Escape;
                return;
            }
            _ => {}
        }
        // C0 controls are carried out in the middle of a sequence too (not in strings).
        let in_string = matches!(
            self.state,
            State::DcsEntry
                | State::DcsParam
                | State::DcsIntermediate
                | State::DcsIgnore
                | State::DcsPassthrough
                | State::OscString
                | State::SosPmApcString
        );
        if b < 0x20 && !in_string {
            self.execute(b);
            return;
        }
        match self.state {
            State::Ground => match b {
                0x20..=0x7f => self.print(char::from(b)),
                0x80..=0x8f | 0x91..=0x9a | 0x9c => {} // C1 controls: executed, vt100 does nothing
                0xc2..=0xf4 => {
                    self.state = State::Utf8;
                    self.utf8_lead(b);
                }
                _ => {}
            },
            State::Escape => match b {
                0x20..=0x2f => {
                    self.collect(b);
                    self.state = State::EscapeIntermediate;
                }
                b'[' => {
                    self.clear_sequence();
                    self.state = State::CsiEntry;
                }
                b']' => self.state = State::OscString,
                b'P' => {
                    self.clear_sequence();
                    self.state = State::DcsEntry;
                }
                b'X' | b'^' | b'_' => self.state = State::SosPmApcString,
                0x30..=0x7e => self.esc_dispatch(b),
                _ => {}
            },
            State::EscapeIntermediate => match b {
                0x20..=0x2f => self.collect(b),
                0x30..=0x7e => self.esc_dispatch(b),
                _ => {}
            },
            State::CsiEntry => match b {
                0x20..=0x2f => {
                    self.collect(b);
                    self.state = State::CsiIntermediate;
                }
                0x30..=0x3b => {
                    self.param_byte(b);
                    self.state = State::CsiParam;
                }
                0x3c..=0x3f => {
                    self.collect(b);
                    self.state = State::CsiParam;
                }
                0x40..=0x7e => self.csi_dispatch(b),
                _ => {}
            },
            State::CsiParam => match b {
                0x30..=0x3b => self.param_byte(b),
                0x3c..=0x3f => self.state = State::CsiIgnore,
                0x20..=0x2f => {
                    self.collect(b);
                    self.state = State::CsiIntermediate;
                }
                0x40..=0x7e => self.csi_dispatch(b),
                _ => {}
            },
            State::CsiIntermediate => match b {
                0x20..=0x2f => self.collect(b),
                0x30..=0x3f => self.state = State::CsiIgnore,
                0x40..=0x7e => self.csi_dispatch(b),
                _ => {}
            },
            State::CsiIgnore => {
                if (0x40..=0x7e).contains(&b) {
                    self.state = State::Ground
                }
            }
            State::DcsEntry => match b {
                0x20..=0x2f => self.state = State::DcsIntermediate,
                0x30..=0x3b => self.state = State::DcsParam,
                0x3c..=0x3f => self.state = State::DcsParam,
                0x40..=0x7e => self.state = State::DcsPassthrough,
                _ => {}
            },
            State::DcsParam => match b {
                0x3c..=0x3f => self.state = State::DcsIgnore,
                0x20..=0x2f => self.state = State::DcsIntermediate,
                0x40..=0x7e => self.state = State::DcsPassthrough,
                _ => {}
            },
            State::DcsIntermediate => match b {
                0x30..=0x3f => self.state = State::DcsIgnore,
                0x40..=0x7e => self.state = State::DcsPassthrough,
                _ => {}
            },
            State::DcsIgnore | State::DcsPassthrough | State::SosPmApcString => {
                if b == 0x9c {
                    self.state = State::Ground;
                }
            }
            State::OscString => {
                if b == 0x07 {
                    self.state = State::Ground;
                }
            }
            State::Utf8 => {}
        }
    }

    fn clear_sequence(&mut self) {
        self.n_intermediates = 0;
        self.param = 0;
        self.params.clear();
    }

    fn collect(&mut self, b: u8) {
        if self.n_intermediates < MAX_INTERMEDIATES {
            self.intermediates[self.n_intermediates] = b;
            self.n_intermediates += 1;
        }
    }

    fn param_byte(&mut self, b: u8) {
        if self.params.full() {
            return;
        }
        match b {
            b';' => {
                self.params.push(self.param);
                self.param = 0;
            }
            b':' => {
                self.params.extend(self.param);
                self.param = 0;
            }
            _ => self.param = self.param.saturating_mul(10).saturating_add(u16::from(b - b'0')),
        }
    }

    fn utf8_lead(&mut self, b: u8) {
        self.point = 0;
        let (state, bits) = match b {
            0xc2..=0xdf => (Utf8::Tail1, u32::from(b & 0x1f) << 6),
            0xe0 => (Utf8::E0, u32::from(b & 0x0f) << 12),
            0xed => (Utf8::Ed, u32::from(b & 0x0f) << 12),
            0xe1..=0xef => (Utf8::Tail2, u32::from(b & 0x0f) << 12),
            0xf0 => (Utf8::F0, u32::from(b & 0x07) << 18),
            0xf4 => (Utf8::F4, u32::from(b & 0x07) << 18),
            _ => (Utf8::Tail3, u32::from(b & 0x07) << 18),
        };
        self.utf8 = state;
        self.point = bits;
    }

    fn utf8_byte(&mut self, b: u8) {
        let tail = u32::from(b & 0x3f);
        let next = match (self.utf8, b) {
            (Utf8::E0, 0xa0..=0xbf) | (Utf8::Ed, 0x80..=0x9f) | (Utf8::Tail2, 0x80..=0xbf) => {
                self.point |= tail << 6;
                Some(Utf8::Tail1)
            }
            (Utf8::F0, 0x90..=0xbf) | (Utf8::F4, 0x80..=0x8f) | (Utf8::Tail3, 0x80..=0xbf) => {
                self.point |= tail << 12;
                Some(Utf8::Tail2)
            }
            (Utf8::Tail1, 0x80..=0xbf) => {
                let c = char::from_u32(self.point | tail).unwrap_or('\u{fffd}');
                self.state = State::Ground;
                self.print(c);
                return;
            }
            _ => None,
        };
        match next {
            Some(s) => self.utf8 = s,
            None => {
                // An invalid sequence: one replacement character, and the byte is gone.
                self.state = State::Ground;
                self.print('\u{fffd}');
            }
        }
    }

    fn execute(&mut self, b: u8) {
        let g = self.grid_mut();
        match b {
            8 => g.pos.col = g.pos.col.saturating_sub(1),
            9 => {
                g.pos.col -= g.pos.col % 8;
                g.pos.col = g.pos.col.saturating_add(8);
                g.col_clamp();
            }
            10..=12 => {
                g.row_inc_scroll(1);
            }
            13 => g.pos.col = 0,
            _ => {}
        }
    }

    /// The end of an escape sequence: carried out, back to text.
    fn esc_dispatch(&mut self, b: u8) {
        self.state = State::Ground;
        if self.n_intermediates > 0 {
            return;
        }
        match b {
            b'7' => self.save_cursor(),
            b'8' => self.restore_cursor(),
            b'M' => self.grid_mut().row_dec_scroll(1),
            b'c' => *self = Term::new(self.normal.rows, self.normal.cols),
            _ => {}
        }
    }

    fn save_cursor(&mut self) {
        let g = self.grid_mut();
        g.saved_pos = g.pos;
        g.saved_origin_mode = g.origin_mode;
        self.saved_fg = self.fg;
    }

    fn restore_cursor(&mut self) {
        let g = self.grid_mut();
        g.pos = g.saved_pos;
        g.origin_mode = g.saved_origin_mode;
        // (vt100 trusts the saved position; here it stays on the screen.)
        g.pos.row = g.pos.row.min(g.rows - 1);
        g.pos.col = g.pos.col.min(g.cols);
        self.fg = self.saved_fg;
    }

    /// The end of a control sequence: carried out, back to text.
    fn csi_dispatch(&mut self, b: u8) {
        self.state = State::Ground;
        if !self.params.full() {
            self.params.push(self.param);
        }
        let red = self.fg.red();
        // The first two numbers (0 when absent), and the first with a default for 0.
        let (a, second) = (self.params.nth(0, 0), self.params.nth(1, 0));
        let or = |v: u16, d: u16| if v == 0 { d } else { v };
        let n = or(a, 1);
        let prefix = if self.n_intermediates > 0 { Some(self.intermediates[0]) } else { None };
        let rows = self.grid().rows;
        let g = self.grid_mut();
        match (prefix, b) {
            (None, b'@') => g.insert_cells(n),
            (None, b'A') => g.row_dec_clamp(n),
            (None, b'B') => g.row_inc_clamp(n),
            (None, b'C') => {
                g.pos.col = g.pos.col.saturating_add(n);
                g.col_clamp();
            }
            (None, b'D') => g.pos.col = g.pos.col.saturating_sub(n),
            (None, b'G') => {
                g.pos.col = n - 1;
                g.col_clamp();
            }
            (None, b'H') => g.set_pos(Pos { row: n - 1, col: or(second, 1) - 1 }),
            (None | Some(b'?'), b'J') => match a {
                0 => g.erase_all_forward(red),
                1 => g.erase_all_backward(red),
                2 => {
                    g.mark_all();
                    for r in &mut g.lines {
                        r.clear(red);
                    }
                }
                _ => {}
            },
            (None | Some(b'?'), b'K') => match a {
                0 => g.erase_row_forward(red),
                1 => g.erase_row_backward(red),
                2 => {
                    g.mark(g.pos.row);
                    if let Some(r) = g.current() {
                        r.clear(red);
                    }
                }
                _ => {}
            },
            (None, b'L') => g.insert_lines(n),
            (None, b'M') => g.delete_lines(n),
            (None, b'P') => g.delete_cells(n),
            (None, b'S') => g.scroll_up(n),
            (None, b'T') => g.scroll_down(n),
            (None, b'X') => g.erase_cells(n, red),
            (None, b'd') => g.pos.row = (n - 1).min(g.rows - 1),
            (None, b'r') => g.set_scroll_region(n - 1, or(second, rows) - 1),
            (None, b'm') => self.sgr(),
            (Some(b'?'), b'h') => self.modes(true),
            (Some(b'?'), b'l') => self.modes(false),
            _ => {}
        }
    }

    fn modes(&mut self, set: bool) {
        let mut i = 0;
        loop {
            // (Only a single number names a mode; copied out so the screen can change.)
            let mode = match self.params.iter().nth(i) {
                None => break,
                Some(&[n]) => Some(n),
                Some(_) => None,
            };
            i += 1;
            let p: &[u16] = match &mode {
                Some(n) => std::slice::from_ref(n),
                None => &[],
            };
            match (p, set) {
                ([6], _) => self.grid_mut().set_origin_mode(set),
                ([47], true) => self.enter_alternate(),
                ([47], false) => self.leave_alternate(),
                ([1049], true) => {
                    self.save_cursor();
                    self.alternate.clear();
                    self.enter_alternate();
                }
                ([1049], false) => {
                    self.leave_alternate();
                    self.restore_cursor();
                }
                _ => {}
            }
        }
    }

    fn enter_alternate(&mut self) {
        self.on_alternate = true;
        self.alternate.allocate();
    }

    fn leave_alternate(&mut self) {
        self.on_alternate = false;
        self.normal.mark_all();
    }

    /// The colour part of SGR, with vt100's rules (a bad colour ends the sequence).
    fn sgr(&mut self) {
        let params = self.params.clone();
        let mut it = params.iter();
        let byte = |v: u16| u8::try_from(v).ok();
        // The next parameter as a single number that fits a byte.
        fn next_byte<'a>(it: &mut impl Iterator<Item = &'a [u16]>) -> Option<u8> {
            match it.next()? {
                [n] => u8::try_from(*n).ok(),
                _ => None,
            }
        }
        while let Some(p) = it.next() {
            match *p {
                [0] | [39] => self.fg = Fg::DEFAULT,
                [n] if (30..=37).contains(&n) => self.fg = Fg::idx(n as u8 - 30),
                [n] if (90..=97).contains(&n) => self.fg = Fg::idx(n as u8 - 82),
                [38, 2, r, g, b] => match (byte(r), byte(g), byte(b)) {
                    (Some(r), Some(g), Some(b)) => self.fg = Fg::rgb(r, g, b),
                    _ => return,
                },
                [38, 5, i] => match byte(i) {
                    Some(i) => self.fg = Fg::idx(i),
                    None => return,
                },
                [38] => match it.next() {
                    Some([2]) => match (next_byte(&mut it), next_byte(&mut it), next_byte(&mut it)) {
                        (Some(r), Some(g), Some(b)) => self.fg = Fg::rgb(r, g, b),
                        _ => return,
                    },
                    Some([5]) => match next_byte(&mut it) {
                        Some(i) => self.fg = Fg::idx(i),
                        None => return,
                    },
                    _ => return,
                },
                // (a background colour out of range ends the SGR, as in vt100)
                [48, 2, r, g, b] if byte(r).is_none() || byte(g).is_none() || byte(b).is_none() => return,
                [48, 5, i] if byte(i).is_none() => return,
                [48] => match it.next() {
                    Some([2]) => {
                        if next_byte(&mut it).is_none() || next_byte(&mut it).is_none() || next_byte(&mut it).is_none() {
                            return;
                        }
                    }
                    Some([5]) => {
                        if next_byte(&mut it).is_none() {
                            return;
                        }
                    }
                    _ => return,
                },
                _ => {}
            }
        }
    }

    /// Printable ASCII: straight into the row while nothing wide is in the way.
    fn print_ascii(&mut self, run: &[u8]) {
        let red = self.fg.red();
        let mut i = 0;
        while i < run.len() {
            let g = self.grid_mut();
            let (row, col, cols) = (g.pos.row, g.pos.col, g.cols);
            g.mark(row);
            let Some(line) = g.lines.get_mut(usize::from(row)) else { return };
            let room = usize::from(cols.saturating_sub(col)).min(run.len() - i);
            let mut k = 0;
            let cells = &mut line.cells[usize::from(col)..usize::from(col) + room];
            for (cell, &b) in cells.iter_mut().zip(&run[i..i + room]) {
                if cell.flags & !1 != 0 {
                    break;
                }
                *cell = Cell { ch: char::from(b), flags: 1, red };
                k += 1;
            }
            g.pos.col += k as u16;
            i += k;
            if i < run.len() {
                // The end of the row (wrap), or a wide character or combined cell to replace.
                self.print(char::from(run[i]));
                i += 1;
            }
        }
    }

    /// vt100's `Screen::text`.
    fn print(&mut self, c: char) {
        let width = match c.width() {
            None if u32::from(c) < 256 => return,
            None => 1u16,
            Some(w) => w as u16,
        };
        let red = self.fg.red();
        let g = self.grid_mut();
        let cols = g.cols;
        let mut wrap = false;
        if g.pos.col > cols - width {
            let last = g.cell(g.pos.row, cols - 1);
            wrap = last.flags != 0;
        }
        g.col_wrap(width, wrap);
        let pos = g.pos;
        g.mark(pos.row);
        if width == 0 {
            g.mark(pos.row.saturating_sub(1));
        }
        if width == 0 {
            if pos.col > 0 {
                let mut col = pos.col - 1;
                if g.cell(pos.row, col).flags & WIDE_CONT != 0 {
                    col = col.saturating_sub(1);
                }
                if let Some(r) = g.line(pos.row) {
                    r.append(col, c);
                }
            } else if pos.row > 0 && g.lines.get(usize::from(pos.row - 1)).is_some_and(|r| r.wrapped) {
                let mut col = cols - 1;
                if g.cell(pos.row - 1, col).flags & WIDE_CONT != 0 {
                    col -= 1;
                }
                if let Some(r) = g.line(pos.row - 1) {
                    r.append(col, c);
                }
            }
            return;
        }
        let here = g.cell(pos.row, pos.col);
        let Some(r) = g.lines.get_mut(usize::from(pos.row)) else { return };
        if here.flags & WIDE_CONT != 0 && pos.col > 0 {
            r.clear_cell(pos.col - 1, red);
        }
        if here.flags & WIDE != 0 {
            r.set_cell(pos.col + 1, ' ', false, red);
        }
        r.set_cell(pos.col, c, width > 1, red);
        g.pos.col = g.pos.col.saturating_add(1);
        if width > 1 {
            let pos = g.pos;
            let next = g.cell(pos.row, pos.col);
            let Some(r) = g.lines.get_mut(usize::from(pos.row)) else { return };
            if next.flags & WIDE != 0 {
                r.clear_cell(pos.col + 1, red);
                if pos.col + 1 == cols - 1 {
                    r.wrapped = false;
                }
            }
            r.clear_cell(pos.col, false);
            if let Some(cell) = r.cells.get_mut(usize::from(pos.col)) {
                cell.flags |= WIDE_CONT;
            }
            g.pos.col = g.pos.col.saturating_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(rows: u16, cols: u16, bytes: &[u8]) -> Term {
        let mut t = Term::new(rows, cols);
        t.process(bytes);
        t
    }

    #[test]
    fn text_colour_and_wrapping() {
        let t = term(4, 10, "\x1b[38;5;1;49m■ hit\x1b[0m 0123456789xy".as_bytes());
        assert_eq!(t.row_text(0), "■ hit 0123");
        assert!(t.row_wrapped(0));
        assert_eq!(t.row_text(1), "456789xy");
        assert!(t.cell(0, 0).unwrap().is('■'));
        assert!(t.cell(0, 0).unwrap().is_error_colour());
        assert!(!t.cell(0, 6).unwrap().is_error_colour());
        assert_eq!(t.cursor_position(), (1, 8));
    }

    #[test]
    fn sequences_cut_anywhere_read_the_same() {
        let bytes = "\x1b[?1049h\x1b[2J\x1b[3;5H\x1b[31m你好■\u{301}x\x1b[0m\r\n\x1b]0;t\x07ok\x1bP1$r\x1b\\\x1b[10;1r\x1bM".as_bytes();
        let whole = term(6, 20, bytes);
        for cut in 0..bytes.len() {
            let mut t = Term::new(6, 20);
            t.process(&bytes[..cut]);
            t.process(&bytes[cut..]);
            for r in 0..6 {
                assert_eq!(t.row_text(r), whole.row_text(r), "cut at {cut}");
            }
            assert_eq!(t.cursor_position(), whole.cursor_position());
        }
        assert_eq!(whole.row_text(3), "    你好■\u{301}x");
        assert!(whole.alternate_screen());
    }
}
