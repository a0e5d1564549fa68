//! The expression language, for what a path and steps cannot say:
//! `concat(FirstName, " ", LastName)`, `Amount * 100`,
//! `if(Probability >= 50, "likely", "unlikely")`. Grammar in
//! `docs/transformations.md`. Bounded: length and nesting are limited, so an
//! expression cannot recurse without bound when parsed or evaluated.

use super::funcs::{FnError, Func, MAX_STRING_BYTES, as_f64, float, to_text, too_long, truthy};
use super::path::{Path, Scope};
use serde_json::Value;
use std::borrow::Cow;

/// Longest expression, in characters.
pub const MAX_EXPR_CHARS: usize = 4096;
/// Deepest nesting of an expression tree.
pub const MAX_EXPR_DEPTH: usize = 48;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A parsed expression.
#[derive(Debug, Clone)]
pub(crate) enum Expr {
    Lit(Value),
    Path(Path),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    Bin(BinOp, Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Call(Func, Box<Expr>),
    Concat(Vec<Expr>),
    Coalesce(Vec<Expr>),
    If(Box<[Expr; 3]>),
    Exists(Box<Expr>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(Value),
    Str(String),
    Path(String),
    Func(String),
    Lit(Value),
    Op(&'static str),
}

/// A parse error with its 1-based column.
pub(crate) type ParseError = (usize, String);

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_' || c == '$' || c == '@'
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$' || c == '@'
}

struct Lexer<'s> {
    chars: Vec<char>,
    pos: usize,
    _src: &'s str,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn take_while(&mut self, f: impl Fn(char) -> bool) -> String {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        self.chars
            .get(start..self.pos)
            .unwrap_or(&[])
            .iter()
            .collect()
    }

    fn string(&mut self, quote: char) -> Result<Tok, ParseError> {
        let start = self.pos;
        self.pos += 1;
        let mut s = String::new();
        loop {
            match self.peek() {
                None => return Err((start + 1, "unclosed string".into())),
                Some('\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some('n') => s.push('\n'),
                        Some('t') => s.push('\t'),
                        Some(c) => s.push(c),
                        None => return Err((start + 1, "unclosed string".into())),
                    }
                }
                Some(c) if c == quote => break,
                Some(c) => s.push(c),
            }
            self.pos += 1;
        }
        self.pos += 1;
        Ok(Tok::Str(s))
    }

    fn number(&mut self) -> Result<Tok, ParseError> {
        let start = self.pos;
        let text = self.take_while(|c| c.is_ascii_digit() || c == '.' || c == 'e' || c == 'E');
        if let Ok(i) = text.parse::<i64>() {
            return Ok(Tok::Num(Value::from(i)));
        }
        text.parse::<f64>()
            .ok()
            .and_then(|f| float(f).ok())
            .map(Tok::Num)
            .ok_or((start + 1, format!("bad number `{text}`")))
    }

    /// A name, then whatever `.name`, `.*` and `[...]` follow it.
    fn word(&mut self) -> Result<Tok, ParseError> {
        let start = self.pos;
        let name = self.take_while(is_ident);
        let mut look = self.pos;
        while self.chars.get(look).is_some_and(|c| c.is_whitespace()) {
            look += 1;
        }
        if self.chars.get(look) == Some(&'(') && !name.starts_with('$') {
            return Ok(Tok::Func(name));
        }
        match name.as_str() {
            "true" => return Ok(Tok::Lit(Value::Bool(true))),
            "false" => return Ok(Tok::Lit(Value::Bool(false))),
            "null" => return Ok(Tok::Lit(Value::Null)),
            "and" => return Ok(Tok::Op("&&")),
            "or" => return Ok(Tok::Op("||")),
            "not" => return Ok(Tok::Op("!")),
            _ => {}
        }
        loop {
            match (self.peek(), self.chars.get(self.pos + 1)) {
                (Some('.'), Some(&c)) if is_ident_start(c) || c.is_ascii_digit() || c == '*' => {
                    self.pos += 2;
                    self.take_while(is_ident);
                }
                (Some('['), _) => self.bracket(start)?,
                _ => break,
            }
        }
        Ok(Tok::Path(
            self.chars
                .get(start..self.pos)
                .unwrap_or(&[])
                .iter()
                .collect(),
        ))
    }

    fn bracket(&mut self, start: usize) -> Result<(), ParseError> {
        let mut quote: Option<char> = None;
        loop {
            self.pos += 1;
            match (self.peek(), quote) {
                (None, _) => return Err((start + 1, "unclosed `[` in path".into())),
                (Some('\\'), Some(_)) => self.pos += 1,
                (Some(c), Some(q)) if c == q => quote = None,
                (Some(c), None) if c == '"' || c == '\'' => quote = Some(c),
                (Some(']'), None) => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => {}
            }
        }
    }

    fn op(&mut self) -> Option<&'static str> {
        const OPS: &[&str] = &[
            "==", "!=", "<=", ">=", "&&", "||", "<", ">", "!", "+", "-", "*", "/", "%", "(", ")",
            ",",
        ];
        let rest = self.chars.get(self.pos..)?;
        let op = OPS
            .iter()
            .find(|op| op.chars().zip(rest.iter()).filter(|(a, b)| a == *b).count() == op.len())?;
        self.pos += op.len();
        Some(op)
    }

    fn tokens(mut self) -> Result<Vec<(usize, Tok)>, ParseError> {
        let mut out = Vec::new();
        while let Some(c) = self.peek() {
            let col = self.pos + 1;
            let tok = if c.is_whitespace() {
                self.pos += 1;
                continue;
            } else if c == '"' || c == '\'' {
                self.string(c)?
            } else if c.is_ascii_digit() {
                self.number()?
            } else if is_ident_start(c) {
                self.word()?
            } else if let Some(op) = self.op() {
                Tok::Op(op)
            } else {
                return Err((col, format!("unexpected `{c}`")));
            };
            out.push((col, tok));
        }
        Ok(out)
    }
}

struct Parser {
    toks: Vec<(usize, Tok)>,
    pos: usize,
    end_col: usize,
}

type Parsed = Result<(Expr, usize), ParseError>;

fn deeper(e: Expr, d: usize, col: usize) -> Parsed {
    if d > MAX_EXPR_DEPTH {
        Err((
            col,
            format!("expression nested deeper than {MAX_EXPR_DEPTH}"),
        ))
    } else {
        Ok((e, d))
    }
}

impl Parser {
    fn col(&self) -> usize {
        self.toks.get(self.pos).map_or(self.end_col, |t| t.0)
    }

    fn eat(&mut self, op: &str) -> bool {
        if matches!(self.toks.get(self.pos), Some((_, Tok::Op(o))) if *o == op) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, op: &str) -> Result<(), ParseError> {
        if self.eat(op) {
            Ok(())
        } else {
            Err((self.col(), format!("expected `{op}`")))
        }
    }

    fn expr(&mut self, depth: usize) -> Parsed {
        if depth > MAX_EXPR_DEPTH {
            return Err((
                self.col(),
                format!("expression nested deeper than {MAX_EXPR_DEPTH}"),
            ));
        }
        self.or(depth)
    }

    fn or(&mut self, depth: usize) -> Parsed {
        let (mut l, mut d) = self.and(depth)?;
        while self.eat("||") {
            let (r, rd) = self.and(depth)?;
            (l, d) = deeper(
                Expr::Or(Box::new(l), Box::new(r)),
                d.max(rd) + 1,
                self.col(),
            )?;
        }
        Ok((l, d))
    }

    fn and(&mut self, depth: usize) -> Parsed {
        let (mut l, mut d) = self.cmp(depth)?;
        while self.eat("&&") {
            let (r, rd) = self.cmp(depth)?;
            (l, d) = deeper(
                Expr::And(Box::new(l), Box::new(r)),
                d.max(rd) + 1,
                self.col(),
            )?;
        }
        Ok((l, d))
    }

    fn binary(
        &mut self,
        depth: usize,
        ops: &[(&str, BinOp)],
        next: fn(&mut Self, usize) -> Parsed,
        once: bool,
    ) -> Parsed {
        let (mut l, mut d) = next(self, depth)?;
        'outer: loop {
            for (s, op) in ops {
                if self.eat(s) {
                    let (r, rd) = next(self, depth)?;
                    (l, d) = deeper(
                        Expr::Bin(*op, Box::new(l), Box::new(r)),
                        d.max(rd) + 1,
                        self.col(),
                    )?;
                    if once {
                        break 'outer;
                    }
                    continue 'outer;
                }
            }
            break;
        }
        Ok((l, d))
    }

    fn cmp(&mut self, depth: usize) -> Parsed {
        use BinOp::*;
        let ops = [
            ("==", Eq),
            ("!=", Ne),
            ("<=", Le),
            (">=", Ge),
            ("<", Lt),
            (">", Gt),
        ];
        self.binary(depth, &ops, Self::add, true)
    }

    fn add(&mut self, depth: usize) -> Parsed {
        self.binary(
            depth,
            &[("+", BinOp::Add), ("-", BinOp::Sub)],
            Self::mul,
            false,
        )
    }

    fn mul(&mut self, depth: usize) -> Parsed {
        let ops = [("*", BinOp::Mul), ("/", BinOp::Div), ("%", BinOp::Rem)];
        self.binary(depth, &ops, Self::unary, false)
    }

    fn unary(&mut self, depth: usize) -> Parsed {
        let col = self.col();
        if self.eat("!") {
            let (e, d) = self.unary(depth + 1)?;
            return deeper(Expr::Not(Box::new(e)), d + 1, col);
        }
        if self.eat("-") {
            let (e, d) = self.unary(depth + 1)?;
            // fold `-3` into a literal so it can be a function's literal argument
            if let Expr::Lit(Value::Number(n)) = &e {
                if let Some(i) = n.as_i64().and_then(i64::checked_neg) {
                    return Ok((Expr::Lit(Value::from(i)), d));
                }
                if let Some(f) = n.as_f64().and_then(|f| float(-f).ok()) {
                    return Ok((Expr::Lit(f), d));
                }
            }
            return deeper(Expr::Neg(Box::new(e)), d + 1, col);
        }
        if depth > MAX_EXPR_DEPTH {
            return Err((
                col,
                format!("expression nested deeper than {MAX_EXPR_DEPTH}"),
            ));
        }
        self.primary(depth)
    }

    fn primary(&mut self, depth: usize) -> Parsed {
        let col = self.col();
        let Some((_, tok)) = self.toks.get(self.pos).cloned() else {
            return Err((col, "unexpected end of expression".into()));
        };
        self.pos += 1;
        match tok {
            Tok::Num(v) | Tok::Lit(v) => Ok((Expr::Lit(v), 1)),
            Tok::Str(s) => Ok((Expr::Lit(Value::String(s)), 1)),
            Tok::Path(p) => Path::parse(&p)
                .map(|p| (Expr::Path(p), 1))
                .map_err(|e| (col, format!("bad path `{p}`: {e}"))),
            Tok::Op("(") => {
                let (e, d) = self.expr(depth + 1)?;
                self.expect(")")?;
                Ok((e, d))
            }
            Tok::Func(name) => self.call(&name, col, depth),
            Tok::Op(o) => Err((col, format!("unexpected `{o}`"))),
        }
    }

    fn call(&mut self, name: &str, col: usize, depth: usize) -> Parsed {
        self.expect("(")?;
        let mut args = Vec::new();
        let mut d = 0;
        if !self.eat(")") {
            loop {
                let (a, ad) = self.expr(depth + 1)?;
                d = d.max(ad);
                args.push(a);
                if self.eat(")") {
                    break;
                }
                self.expect(",")?;
            }
        }
        let e = build_call(name, args).map_err(|m| (col, m))?;
        deeper(e, d + 1, col)
    }
}

fn build_call(name: &str, mut args: Vec<Expr>) -> Result<Expr, String> {
    match name {
        "concat" => return Ok(Expr::Concat(args)),
        "coalesce" => return Ok(Expr::Coalesce(args)),
        "exists" if args.len() == 1 => return Ok(Expr::Exists(Box::new(args.remove(0)))),
        "if" if args.len() == 3 => {
            let [c, a, b]: [Expr; 3] = args.try_into().map_err(|_| "if takes 3 arguments")?;
            return Ok(Expr::If(Box::new([c, a, b])));
        }
        "exists" | "if" => {
            return Err(format!(
                "`{name}` takes {} argument(s)",
                if name == "if" { 3 } else { 1 }
            ));
        }
        _ => {}
    }
    if args.is_empty() {
        return Err(format!("`{name}` needs the value as its first argument"));
    }
    let value = args.remove(0);
    let mut lits = Vec::with_capacity(args.len());
    for (i, a) in args.into_iter().enumerate() {
        match a {
            Expr::Lit(v) => lits.push(v),
            _ => return Err(format!("argument {} of `{name}` must be a literal", i + 2)),
        }
    }
    Ok(Expr::Call(Func::build(name, &lits)?, Box::new(value)))
}

/// Parses an expression.
pub(crate) fn parse(src: &str) -> Result<Expr, ParseError> {
    let n = src.chars().count();
    if n > MAX_EXPR_CHARS {
        return Err((
            1,
            format!("expression longer than {MAX_EXPR_CHARS} characters"),
        ));
    }
    let lexer = Lexer {
        chars: src.chars().collect(),
        pos: 0,
        _src: src,
    };
    let toks = lexer.tokens()?;
    if toks.is_empty() {
        return Err((1, "empty expression".into()));
    }
    let mut p = Parser {
        toks,
        pos: 0,
        end_col: n + 1,
    };
    let (e, _) = p.expr(0)?;
    if p.pos < p.toks.len() {
        return Err((p.col(), "unexpected text after the expression".into()));
    }
    Ok(e)
}

/// Every path an expression reads.
pub(crate) fn paths<'e>(e: &'e Expr, out: &mut Vec<&'e Path>) {
    match e {
        Expr::Lit(_) => {}
        Expr::Path(p) => out.push(p),
        Expr::Not(a) | Expr::Neg(a) | Expr::Call(_, a) | Expr::Exists(a) => paths(a, out),
        Expr::Bin(_, a, b) | Expr::And(a, b) | Expr::Or(a, b) => {
            paths(a, out);
            paths(b, out);
        }
        Expr::Concat(xs) | Expr::Coalesce(xs) => xs.iter().for_each(|x| paths(x, out)),
        Expr::If(xs) => xs.iter().for_each(|x| paths(x, out)),
    }
}

fn type_error(msg: String) -> FnError {
    ("type_error", msg)
}

fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(_) => as_f64(v).ok(),
        _ => None,
    }
}

fn arith(op: BinOp, a: &Value, b: &Value) -> Result<Value, FnError> {
    if a.is_null() || b.is_null() {
        return Ok(Value::Null);
    }
    if op == BinOp::Add && (a.is_string() || b.is_string()) {
        let s = to_text(a) + &to_text(b);
        return if s.len() > MAX_STRING_BYTES {
            Err(too_long())
        } else {
            Ok(Value::String(s))
        };
    }
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        let r = match op {
            BinOp::Add => x.checked_add(y),
            BinOp::Sub => x.checked_sub(y),
            BinOp::Mul => x.checked_mul(y),
            BinOp::Rem if y != 0 => x.checked_rem(y),
            _ => None,
        };
        if let Some(r) = r {
            return Ok(Value::from(r));
        }
    }
    let (Some(x), Some(y)) = (num(a), num(b)) else {
        return Err(type_error(format!(
            "cannot apply arithmetic to {a} and {b}"
        )));
    };
    let r = match op {
        BinOp::Add => x + y,
        BinOp::Sub => x - y,
        BinOp::Mul => x * y,
        BinOp::Div | BinOp::Rem if y == 0.0 => return Err(type_error("division by zero".into())),
        BinOp::Div => x / y,
        _ => x % y,
    };
    float(r)
}

fn compare(op: BinOp, a: &Value, b: &Value) -> bool {
    let ord = match (a, b) {
        (Value::Number(_), Value::Number(_)) => {
            num(a).zip(num(b)).and_then(|(x, y)| x.partial_cmp(&y))
        }
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    };
    match op {
        BinOp::Eq => ord.map_or(a == b, |o| o.is_eq()),
        BinOp::Ne => ord.map_or(a != b, |o| o.is_ne()),
        BinOp::Lt => ord.is_some_and(|o| o.is_lt()),
        BinOp::Le => ord.is_some_and(|o| o.is_le()),
        BinOp::Gt => ord.is_some_and(|o| o.is_gt()),
        _ => ord.is_some_and(|o| o.is_ge()),
    }
}

impl Expr {
    /// Evaluates the expression; an absent path is `null`.
    pub fn eval<'a>(&'a self, scope: Scope<'a>) -> Result<Cow<'a, Value>, FnError> {
        Ok(match self {
            Expr::Lit(v) => Cow::Borrowed(v),
            Expr::Path(p) => p.get(scope).unwrap_or(Cow::Owned(Value::Null)),
            Expr::Not(a) => Cow::Owned(Value::Bool(!truthy(&*a.eval(scope)?))),
            Expr::Neg(a) => Cow::Owned(arith(BinOp::Sub, &Value::from(0), &*a.eval(scope)?)?),
            Expr::And(a, b) => Cow::Owned(Value::Bool(
                truthy(&*a.eval(scope)?) && truthy(&*b.eval(scope)?),
            )),
            Expr::Or(a, b) => Cow::Owned(Value::Bool(
                truthy(&*a.eval(scope)?) || truthy(&*b.eval(scope)?),
            )),
            Expr::Bin(op, a, b) => {
                let (x, y) = (a.eval(scope)?, b.eval(scope)?);
                Cow::Owned(match op {
                    BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem => {
                        arith(*op, &x, &y)?
                    }
                    _ => Value::Bool(compare(*op, &x, &y)),
                })
            }
            Expr::Call(f, a) => Cow::Owned(f.apply(&*a.eval(scope)?)?),
            Expr::Concat(xs) => {
                let mut s = String::new();
                for x in xs {
                    s.push_str(&to_text(&*x.eval(scope)?));
                    if s.len() > MAX_STRING_BYTES {
                        return Err(too_long());
                    }
                }
                Cow::Owned(Value::String(s))
            }
            Expr::Coalesce(xs) => {
                for x in xs {
                    let v = x.eval(scope)?;
                    if !v.is_null() {
                        return Ok(v);
                    }
                }
                Cow::Owned(Value::Null)
            }
            Expr::If(xs) => {
                let [c, a, b] = &**xs;
                if truthy(&*c.eval(scope)?) {
                    a.eval(scope)?
                } else {
                    b.eval(scope)?
                }
            }
            Expr::Exists(a) => Cow::Owned(Value::Bool(!a.eval(scope)?.is_null())),
        })
    }
}
