//! [`Expr`]: column expressions for [`super::DataFrame::filter`] and
//! [`super::DataFrame::with_column`], built with [`col`] and [`lit`].
//!
//! An expression is plain data (it travels to the workers inside the task
//! graph). It is type-checked against the frame's schema when the operation
//! is added to the graph, so `col("name").lt(0)` on a string column fails
//! there, and evaluated on each partition with Arrow's compute kernels.
//!
//! Types: numbers of different types meet in a common type (a literal takes
//! the column's type when it converts exactly, otherwise the wider of the
//! two: any float gives `Float64`, two unsigned integers `UInt64`, `UInt64`
//! with a signed integer `Float64` (as in numpy), other integers `Int64`). `+ - *` wrap on integer overflow like numpy; `/` is
//! true division (`Float64` for integers, like pandas). Nulls follow SQL:
//! comparisons with null are null, `and`/`or` are Kleene logic, and
//! [`super::DataFrame::filter`] drops rows whose predicate is null.

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Datum, Float64Array, Int64Array, RecordBatch, Scalar,
    StringArray, UInt32Array,
};
use arrow::compute::kernels::{boolean, cmp, numeric};
use arrow::datatypes::{DataType, Schema};
use arrow::error::ArrowError;
use rudask::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// A literal value in an expression.
///
/// ```
/// use rudask_collections::dataframe::Literal;
/// assert_eq!(Literal::from(3), Literal::Int(3));
/// assert_eq!(Literal::from("a"), Literal::Str("a".into()));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Literal {
    /// A signed integer (`Int64` unless it meets a narrower column).
    Int(i64),
    /// A float (`Float64` unless it meets a `Float32` column it fits).
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A string (`Utf8`, or the string type of the column it meets).
    Str(String),
}

macro_rules! literal_from {
    ($($t:ty => $variant:ident($conv:expr)),* $(,)?) => {$(
        impl From<$t> for Literal {
            fn from(v: $t) -> Literal {
                Literal::$variant($conv(v))
            }
        }
        impl From<$t> for Expr {
            fn from(v: $t) -> Expr {
                Expr::Literal(Literal::from(v))
            }
        }
    )*};
}

literal_from! {
    i64 => Int(|v| v),
    i32 => Int(i64::from),
    u32 => Int(i64::from),
    f64 => Float(|v| v),
    f32 => Float(f64::from),
    bool => Bool(|v| v),
    &str => Str(str::to_string),
    String => Str(|v| v),
}

impl Literal {
    /// The literal as a one-element array of its own type.
    fn to_array(&self) -> ArrayRef {
        match self {
            Literal::Int(v) => Arc::new(Int64Array::from(vec![*v])),
            Literal::Float(v) => Arc::new(Float64Array::from(vec![*v])),
            Literal::Bool(v) => Arc::new(BooleanArray::from(vec![*v])),
            Literal::Str(v) => Arc::new(StringArray::from(vec![v.as_str()])),
        }
    }

    fn data_type(&self) -> DataType {
        match self {
            Literal::Int(_) => DataType::Int64,
            Literal::Float(_) => DataType::Float64,
            Literal::Bool(_) => DataType::Boolean,
            Literal::Str(_) => DataType::Utf8,
        }
    }

    /// Whether the literal converts to `t` without changing its value.
    fn fits(&self, t: &DataType) -> bool {
        use DataType::*;
        match (self, t) {
            (Literal::Int(v), Int8) => i8::try_from(*v).is_ok(),
            (Literal::Int(v), Int16) => i16::try_from(*v).is_ok(),
            (Literal::Int(v), Int32) => i32::try_from(*v).is_ok(),
            (Literal::Int(_), Int64) => true,
            (Literal::Int(v), UInt8) => u8::try_from(*v).is_ok(),
            (Literal::Int(v), UInt16) => u16::try_from(*v).is_ok(),
            (Literal::Int(v), UInt32) => u32::try_from(*v).is_ok(),
            (Literal::Int(v), UInt64) => *v >= 0,
            (Literal::Int(v), Float32) => v.unsigned_abs() <= 1 << 24,
            (Literal::Int(v), Float64) => v.unsigned_abs() <= 1 << 53,
            (Literal::Float(v), Float32) => f64::from(*v as f32) == *v,
            (Literal::Float(_), Float64) => true,
            (Literal::Str(_), Utf8 | LargeUtf8 | Utf8View) => true,
            (Literal::Bool(_), Boolean) => true,
            _ => false,
        }
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Int(v) => write!(f, "{v}"),
            Literal::Float(v) => write!(f, "{v:?}"),
            Literal::Bool(v) => write!(f, "{v}"),
            Literal::Str(v) => write!(f, "{v:?}"),
        }
    }
}

/// A binary operator of an [`Expr`].
///
/// ```
/// use rudask_collections::dataframe::{col, BinaryOp, Expr};
/// assert!(matches!(col("a").lt(0), Expr::Binary { op: BinaryOp::Lt, .. }));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BinaryOp {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// Kleene `and` of two booleans.
    And,
    /// Kleene `or` of two booleans.
    Or,
    /// `+` (wrapping for integers).
    Add,
    /// `-` (wrapping for integers).
    Sub,
    /// `*` (wrapping for integers).
    Mul,
    /// `/` (true division: integers give `Float64`).
    Div,
}

impl BinaryOp {
    fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::And => "and",
            BinaryOp::Or => "or",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
        }
    }

    fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge | BinaryOp::Eq | BinaryOp::Ne
        )
    }

    fn is_arithmetic(self) -> bool {
        matches!(self, BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div)
    }
}

/// A column expression: a column, a literal, or an operation on them.
///
/// ```
/// use rudask_collections::dataframe::{col, lit};
/// let negative_rich = col("balance").lt(0).and(col("name").eq("alice"));
/// let doubled = col("balance") * 2 + lit(1.5);
/// assert_eq!(negative_rich.to_string(), r#"((balance < 0) and (name == "alice"))"#);
/// assert_eq!(doubled.to_string(), "((balance * 2) + 1.5)");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Expr {
    /// The column of this name.
    Column(String),
    /// A constant.
    Literal(Literal),
    /// `left op right`.
    Binary {
        /// The operator.
        op: BinaryOp,
        /// The left operand.
        left: Box<Expr>,
        /// The right operand.
        right: Box<Expr>,
    },
    /// Boolean negation (null stays null).
    Not(Box<Expr>),
    /// True where the operand is null.
    IsNull(Box<Expr>),
    /// True where the operand is not null.
    IsNotNull(Box<Expr>),
}

/// The column `name`.
///
/// ```
/// use rudask_collections::dataframe::col;
/// let e = col("balance").ge(100);
/// assert_eq!(e.to_string(), "(balance >= 100)");
/// ```
pub fn col(name: impl Into<String>) -> Expr {
    Expr::Column(name.into())
}

/// A literal: an integer, a float, a boolean or a string.
///
/// ```
/// use rudask_collections::dataframe::{col, lit};
/// let e = lit(10).lt(col("x"));
/// assert_eq!(e.to_string(), "(10 < x)");
/// ```
pub fn lit(value: impl Into<Literal>) -> Expr {
    Expr::Literal(value.into())
}

impl Expr {
    fn binary(self, op: BinaryOp, other: impl Into<Expr>) -> Expr {
        Expr::Binary { op, left: Box::new(self), right: Box::new(other.into()) }
    }

    /// `self < other`.
    ///
    /// ```
    /// use rudask_collections::dataframe::col;
    /// assert_eq!(col("a").lt(col("b")).to_string(), "(a < b)");
    /// ```
    pub fn lt(self, other: impl Into<Expr>) -> Expr {
        self.binary(BinaryOp::Lt, other)
    }

    /// `self <= other`.
    ///
    /// ```
    /// use rudask_collections::dataframe::col;
    /// assert_eq!(col("a").le(1).to_string(), "(a <= 1)");
    /// ```
    pub fn le(self, other: impl Into<Expr>) -> Expr {
        self.binary(BinaryOp::Le, other)
    }

    /// `self > other`.
    ///
    /// ```
    /// use rudask_collections::dataframe::col;
    /// assert_eq!(col("a").gt(1.5).to_string(), "(a > 1.5)");
    /// ```
    pub fn gt(self, other: impl Into<Expr>) -> Expr {
        self.binary(BinaryOp::Gt, other)
    }

    /// `self >= other`.
    ///
    /// ```
    /// use rudask_collections::dataframe::col;
    /// assert_eq!(col("a").ge(0).to_string(), "(a >= 0)");
    /// ```
    pub fn ge(self, other: impl Into<Expr>) -> Expr {
        self.binary(BinaryOp::Ge, other)
    }

    /// `self == other`.
    ///
    /// ```
    /// use rudask_collections::dataframe::col;
    /// assert_eq!(col("name").eq("bob").to_string(), r#"(name == "bob")"#);
    /// ```
    #[allow(clippy::should_implement_trait)]
    pub fn eq(self, other: impl Into<Expr>) -> Expr {
        self.binary(BinaryOp::Eq, other)
    }

    /// `self != other`.
    ///
    /// ```
    /// use rudask_collections::dataframe::col;
    /// assert_eq!(col("flag").ne(true).to_string(), "(flag != true)");
    /// ```
    pub fn ne(self, other: impl Into<Expr>) -> Expr {
        self.binary(BinaryOp::Ne, other)
    }

    /// Kleene `self and other` (also `self & other`).
    ///
    /// ```
    /// use rudask_collections::dataframe::col;
    /// let e = col("a").gt(0).and(col("b").gt(0));
    /// assert_eq!(e, col("a").gt(0) & col("b").gt(0));
    /// ```
    pub fn and(self, other: impl Into<Expr>) -> Expr {
        self.binary(BinaryOp::And, other)
    }

    /// Kleene `self or other` (also `self | other`).
    ///
    /// ```
    /// use rudask_collections::dataframe::col;
    /// let e = col("a").gt(0).or(col("b").gt(0));
    /// assert_eq!(e, col("a").gt(0) | col("b").gt(0));
    /// ```
    pub fn or(self, other: impl Into<Expr>) -> Expr {
        self.binary(BinaryOp::Or, other)
    }

    /// Boolean negation (also `!self`).
    ///
    /// ```
    /// use rudask_collections::dataframe::col;
    /// assert_eq!(col("a").gt(0).not(), !col("a").gt(0));
    /// ```
    #[allow(clippy::should_implement_trait)]
    pub fn not(self) -> Expr {
        Expr::Not(Box::new(self))
    }

    /// True where `self` is null.
    ///
    /// ```
    /// use rudask_collections::dataframe::col;
    /// assert_eq!(col("a").is_null().to_string(), "(a is null)");
    /// ```
    pub fn is_null(self) -> Expr {
        Expr::IsNull(Box::new(self))
    }

    /// True where `self` is not null.
    ///
    /// ```
    /// use rudask_collections::dataframe::col;
    /// assert_eq!(col("a").is_not_null().to_string(), "(a is not null)");
    /// ```
    pub fn is_not_null(self) -> Expr {
        Expr::IsNotNull(Box::new(self))
    }

    /// `self + other` (also the `+` operator).
    ///
    /// ```
    /// use rudask_collections::dataframe::col;
    /// assert_eq!(col("a").add(1), col("a") + 1);
    /// ```
    #[allow(clippy::should_implement_trait)]
    pub fn add(self, other: impl Into<Expr>) -> Expr {
        self.binary(BinaryOp::Add, other)
    }

    /// `self - other` (also the `-` operator).
    ///
    /// ```
    /// use rudask_collections::dataframe::col;
    /// assert_eq!(col("a").sub(col("b")), col("a") - col("b"));
    /// ```
    #[allow(clippy::should_implement_trait)]
    pub fn sub(self, other: impl Into<Expr>) -> Expr {
        self.binary(BinaryOp::Sub, other)
    }

    /// `self * other` (also the `*` operator).
    ///
    /// ```
    /// use rudask_collections::dataframe::col;
    /// assert_eq!(col("a").mul(2.0), col("a") * 2.0);
    /// ```
    #[allow(clippy::should_implement_trait)]
    pub fn mul(self, other: impl Into<Expr>) -> Expr {
        self.binary(BinaryOp::Mul, other)
    }

    /// `self / other`, true division (also the `/` operator).
    ///
    /// ```
    /// use rudask_collections::dataframe::col;
    /// assert_eq!(col("a").div(2), col("a") / 2);
    /// ```
    #[allow(clippy::should_implement_trait)]
    pub fn div(self, other: impl Into<Expr>) -> Expr {
        self.binary(BinaryOp::Div, other)
    }

    /// The type of the expression's values over `schema`, or an error for
    /// the operation `op` naming the column, the types and the literal that
    /// do not fit together.
    pub(crate) fn data_type(&self, schema: &Schema, op: &str) -> Result<DataType> {
        match self {
            Expr::Column(name) => {
                schema.field_with_name(name).map(|f| f.data_type().clone()).map_err(|_| {
                    let columns: Vec<&str> =
                        schema.fields().iter().map(|f| f.name().as_str()).collect();
                    Error::InvalidArgument(format!(
                        "{op}: unknown column {name:?}; the columns are {}",
                        columns.join(", ")
                    ))
                })
            }
            Expr::Literal(l) => Ok(l.data_type()),
            Expr::IsNull(e) | Expr::IsNotNull(e) => {
                e.data_type(schema, op)?;
                Ok(DataType::Boolean)
            }
            Expr::Not(e) => {
                let t = e.data_type(schema, op)?;
                if t == DataType::Boolean {
                    Ok(DataType::Boolean)
                } else {
                    Err(Error::InvalidArgument(format!(
                        "{op}: `not` needs a boolean operand, but {} in {self}",
                        describe(e, &t)
                    )))
                }
            }
            Expr::Binary { op: bop, left, right } => {
                let (lt, rt) = (left.data_type(schema, op)?, right.data_type(schema, op)?);
                result_type(*bop, left, &lt, right, &rt).ok_or_else(|| {
                    let what = if bop.is_comparison() {
                        "cannot compare"
                    } else if bop.is_arithmetic() {
                        "cannot do arithmetic on"
                    } else {
                        "`and`/`or` need booleans, cannot combine"
                    };
                    Error::InvalidArgument(format!(
                        "{op}: {what} {} with {} in {self}",
                        describe(left, &lt),
                        describe(right, &rt)
                    ))
                })
            }
        }
    }

    /// The expression's values over the rows of `batch`, one per row.
    pub(crate) fn evaluate(
        &self,
        batch: &RecordBatch,
    ) -> std::result::Result<ArrayRef, ArrowError> {
        let v = self.eval(batch)?;
        if v.scalar {
            broadcast(&v.array, batch.num_rows())
        } else {
            Ok(v.array)
        }
    }

    fn eval(&self, batch: &RecordBatch) -> std::result::Result<Val, ArrowError> {
        match self {
            Expr::Column(name) => {
                let i = batch.schema().index_of(name)?;
                Ok(Val { array: batch.column(i).clone(), scalar: false })
            }
            Expr::Literal(l) => Ok(Val { array: l.to_array(), scalar: true }),
            Expr::IsNull(e) => {
                let v = e.eval(batch)?;
                Ok(Val { array: Arc::new(boolean::is_null(&v.array)?), scalar: v.scalar })
            }
            Expr::IsNotNull(e) => {
                let v = e.eval(batch)?;
                Ok(Val { array: Arc::new(boolean::is_not_null(&v.array)?), scalar: v.scalar })
            }
            Expr::Not(e) => {
                let v = e.eval(batch)?;
                Ok(Val { array: Arc::new(boolean::not(as_bool(&v.array)?)?), scalar: v.scalar })
            }
            Expr::Binary { op, left, right } => {
                let (l, r) = (left.eval(batch)?, right.eval(batch)?);
                let scalar = l.scalar && r.scalar;
                let array = binary(*op, left, l, right, r, batch.num_rows())?;
                Ok(Val { array, scalar })
            }
        }
    }

    fn literal(&self) -> Option<&Literal> {
        match self {
            Expr::Literal(l) => Some(l),
            _ => None,
        }
    }
}

/// An operand for an error message: what it is and its type.
fn describe(e: &Expr, t: &DataType) -> String {
    match e {
        Expr::Column(name) => format!("column {name:?} of type {t}"),
        Expr::Literal(l) => format!("the literal {l} ({t})"),
        e => format!("{e} of type {t}"),
    }
}

fn is_numeric(t: &DataType) -> bool {
    t.is_integer() || t.is_floating()
}

fn is_string(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// The type both operands of `op` are cast to, or `None` when they do not
/// go together.
fn operand_type(
    op: BinaryOp,
    left: &Expr,
    lt: &DataType,
    right: &Expr,
    rt: &DataType,
) -> Option<DataType> {
    if matches!(op, BinaryOp::And | BinaryOp::Or) {
        return (*lt == DataType::Boolean && *rt == DataType::Boolean).then_some(DataType::Boolean);
    }
    let numeric = is_numeric(lt) && is_numeric(rt);
    if op.is_arithmetic() && !numeric {
        return None;
    }
    // A literal takes the other side's type when its value survives.
    let adopt = |lit: Option<&Literal>, other: &DataType| lit.is_some_and(|l| l.fits(other));
    if lt == rt {
        (numeric || is_string(lt) || !lt.is_nested()).then(|| lt.clone())
    } else if adopt(left.literal(), rt) {
        Some(rt.clone())
    } else if adopt(right.literal(), lt) {
        Some(lt.clone())
    } else if numeric {
        let unsigned = (lt.is_unsigned_integer(), rt.is_unsigned_integer());
        Some(if lt.is_floating() || rt.is_floating() {
            DataType::Float64
        } else if unsigned == (true, true) {
            DataType::UInt64
        } else if unsigned != (false, false) && [lt, rt].contains(&&DataType::UInt64) {
            // As in numpy: no integer type holds both Int64 and UInt64.
            DataType::Float64
        } else {
            DataType::Int64
        })
    } else if is_string(lt) && is_string(rt) {
        Some(DataType::LargeUtf8)
    } else {
        None
    }
}

/// The type of `left op right`, or `None` when the operands do not fit.
fn result_type(
    op: BinaryOp,
    left: &Expr,
    lt: &DataType,
    right: &Expr,
    rt: &DataType,
) -> Option<DataType> {
    let t = operand_type(op, left, lt, right, rt)?;
    Some(match op {
        BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul => t,
        BinaryOp::Div if t.is_floating() => t,
        BinaryOp::Div => DataType::Float64,
        _ => DataType::Boolean,
    })
}

/// An evaluated operand: a column, or a literal (one value for every row).
struct Val {
    array: ArrayRef,
    scalar: bool,
}

impl Val {
    fn cast(self, t: &DataType) -> std::result::Result<Val, ArrowError> {
        if self.array.data_type() == t {
            return Ok(self);
        }
        Ok(Val { array: arrow::compute::cast(&self.array, t)?, scalar: self.scalar })
    }

    fn datum(&self) -> Box<dyn Datum + '_> {
        if self.scalar {
            Box::new(Scalar::new(&self.array))
        } else {
            Box::new(&self.array)
        }
    }

    /// The values as a full column of `rows`.
    fn column(&self, rows: usize) -> std::result::Result<ArrayRef, ArrowError> {
        if self.scalar {
            broadcast(&self.array, rows)
        } else {
            Ok(self.array.clone())
        }
    }
}

/// A one-element array repeated `rows` times.
fn broadcast(array: &ArrayRef, rows: usize) -> std::result::Result<ArrayRef, ArrowError> {
    let zeros = UInt32Array::from(vec![0u32; rows]);
    arrow::compute::take(array, &zeros, None)
}

fn as_bool(a: &ArrayRef) -> std::result::Result<&BooleanArray, ArrowError> {
    a.as_boolean_opt().ok_or_else(|| {
        ArrowError::InvalidArgumentError(format!("expected booleans, found {}", a.data_type()))
    })
}

fn binary(
    op: BinaryOp,
    left: &Expr,
    l: Val,
    right: &Expr,
    r: Val,
    rows: usize,
) -> std::result::Result<ArrayRef, ArrowError> {
    let (lt, rt) = (l.array.data_type().clone(), r.array.data_type().clone());
    let t = operand_type(op, left, &lt, right, &rt).ok_or_else(|| {
        ArrowError::InvalidArgumentError(format!(
            "{left} ({lt}) {} {right} ({rt}): the operand types do not go together",
            op.symbol()
        ))
    })?;
    let t = if op == BinaryOp::Div && !t.is_floating() { DataType::Float64 } else { t };
    let (l, r) = (l.cast(&t)?, r.cast(&t)?);
    let (ld, rd) = (l.datum(), r.datum());
    let (ld, rd) = (ld.as_ref(), rd.as_ref());
    Ok(match op {
        BinaryOp::Lt => Arc::new(cmp::lt(ld, rd)?),
        BinaryOp::Le => Arc::new(cmp::lt_eq(ld, rd)?),
        BinaryOp::Gt => Arc::new(cmp::gt(ld, rd)?),
        BinaryOp::Ge => Arc::new(cmp::gt_eq(ld, rd)?),
        BinaryOp::Eq => Arc::new(cmp::eq(ld, rd)?),
        BinaryOp::Ne => Arc::new(cmp::neq(ld, rd)?),
        BinaryOp::Add => numeric::add_wrapping(ld, rd)?,
        BinaryOp::Sub => numeric::sub_wrapping(ld, rd)?,
        BinaryOp::Mul => numeric::mul_wrapping(ld, rd)?,
        BinaryOp::Div => numeric::div(ld, rd)?,
        BinaryOp::And | BinaryOp::Or => {
            let scalar = l.scalar && r.scalar;
            let n = if scalar { 1 } else { rows };
            let (la, ra) = (l.column(n)?, r.column(n)?);
            let (la, ra) = (as_bool(&la)?, as_bool(&ra)?);
            Arc::new(if op == BinaryOp::And {
                boolean::and_kleene(la, ra)?
            } else {
                boolean::or_kleene(la, ra)?
            })
        }
    })
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Column(name) => f.write_str(name),
            Expr::Literal(l) => write!(f, "{l}"),
            Expr::Binary { op, left, right } => write!(f, "({left} {} {right})", op.symbol()),
            Expr::Not(e) => write!(f, "(not {e})"),
            Expr::IsNull(e) => write!(f, "({e} is null)"),
            Expr::IsNotNull(e) => write!(f, "({e} is not null)"),
        }
    }
}

macro_rules! binary_operator {
    ($($tr:ident $method:ident => $op:ident),* $(,)?) => {$(
        impl<T: Into<Expr>> std::ops::$tr<T> for Expr {
            type Output = Expr;
            fn $method(self, other: T) -> Expr {
                self.binary(BinaryOp::$op, other)
            }
        }
    )*};
}

binary_operator! {
    Add add => Add,
    Sub sub => Sub,
    Mul mul => Mul,
    Div div => Div,
    BitAnd bitand => And,
    BitOr bitor => Or,
}

impl std::ops::Not for Expr {
    type Output = Expr;
    fn not(self) -> Expr {
        Expr::Not(Box::new(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float32Array, Int32Array, UInt8Array};
    use arrow::datatypes::Field;

    fn batch() -> RecordBatch {
        RecordBatch::try_from_iter([
            (
                "name",
                Arc::new(StringArray::from(vec![Some("a"), Some("bb"), None, Some("d")])) as _,
            ),
            ("balance", Arc::new(Int64Array::from(vec![Some(-5), Some(0), Some(7), None])) as _),
            ("small", Arc::new(Int32Array::from(vec![1, 2, 3, 4])) as _),
            ("ratio", Arc::new(Float32Array::from(vec![0.5, 1.5, -2.0, 8.0])) as _),
            ("byte", Arc::new(UInt8Array::from(vec![1u8, 200, 3, 4])) as _),
        ])
        .unwrap()
    }

    fn eval(e: Expr) -> ArrayRef {
        let b = batch();
        let t = e.data_type(&b.schema(), "test").unwrap();
        let out = e.evaluate(&b).unwrap();
        assert_eq!(out.data_type(), &t, "{e}: checked type is the evaluated type");
        assert_eq!(out.len(), b.num_rows());
        out
    }

    fn bools(a: ArrayRef) -> Vec<Option<bool>> {
        a.as_boolean().iter().collect()
    }

    #[test]
    fn comparisons_with_literals_and_columns() {
        assert_eq!(bools(eval(col("balance").lt(0))), [Some(true), Some(false), Some(false), None]);
        assert_eq!(
            bools(eval(col("small").ge(3))),
            [Some(false), Some(false), Some(true), Some(true)]
        );
        assert_eq!(bools(eval(col("name").eq("bb"))), [Some(false), Some(true), None, Some(false)]);
        assert_eq!(
            bools(eval(col("balance").gt(col("small")))),
            [Some(false), Some(false), Some(true), None]
        );
        assert_eq!(
            bools(eval(lit(2).le(col("small")))),
            [Some(false), Some(true), Some(true), Some(true)]
        );
        assert_eq!(
            bools(eval(col("byte").ne(200))),
            [Some(true), Some(false), Some(true), Some(true)]
        );
    }

    #[test]
    fn numeric_types_meet_in_a_common_type() {
        // An int column against a float literal compares as floats.
        assert_eq!(
            bools(eval(col("small").lt(2.5))),
            [Some(true), Some(true), Some(false), Some(false)]
        );
        // A literal that fits keeps the column's type; one that does not widens.
        assert_eq!(eval(col("small") + 1).data_type(), &DataType::Int32);
        assert_eq!(eval(col("small") + (1i64 << 40)).data_type(), &DataType::Int64);
        assert_eq!(eval(col("byte").lt(300)).data_type(), &DataType::Boolean);
        assert_eq!(bools(eval(col("byte").lt(300))), [Some(true); 4]);
        assert_eq!(eval(col("ratio") * col("small")).data_type(), &DataType::Float64);
        assert_eq!(eval(col("ratio") * 2).data_type(), &DataType::Float32);
        assert_eq!(eval(col("byte") + col("small")).data_type(), &DataType::Int64);
        let b = RecordBatch::try_from_iter([
            ("u", Arc::new(arrow::array::UInt64Array::from(vec![u64::MAX, 1])) as ArrayRef),
            ("i", Arc::new(Int64Array::from(vec![-1, 2])) as _),
        ])
        .unwrap();
        let gt = col("u").gt(col("i"));
        assert_eq!(gt.data_type(&b.schema(), "t").unwrap(), DataType::Boolean);
        assert_eq!(
            bools(gt.evaluate(&b).unwrap()),
            [Some(true), Some(false)],
            "u64::MAX stays big"
        );
        let sum = eval(col("balance") + col("small"));
        assert_eq!(
            sum.as_primitive::<arrow::datatypes::Int64Type>().iter().collect::<Vec<_>>(),
            [Some(-4), Some(2), Some(10), None]
        );
    }

    #[test]
    fn division_is_true_division() {
        let q = eval(col("small") / 2);
        assert_eq!(q.data_type(), &DataType::Float64);
        let q = q.as_primitive::<arrow::datatypes::Float64Type>();
        assert_eq!(q.values().to_vec(), [0.5, 1.0, 1.5, 2.0]);
    }

    #[test]
    fn boolean_logic_and_nulls() {
        let e = col("balance").lt(0) | col("name").eq("d");
        assert_eq!(bools(eval(e)), [Some(true), Some(false), None, Some(true)]);
        let e = col("balance").ge(0) & col("small").gt(2);
        assert_eq!(bools(eval(e)), [Some(false), Some(false), Some(true), None], "null and true");
        let e = col("balance").ge(0) & col("small").lt(2);
        assert_eq!(bools(eval(e)), [Some(false), Some(false), Some(false), Some(false)]);
        assert_eq!(bools(eval(!col("balance").lt(0))), [Some(false), Some(true), Some(true), None]);
        assert_eq!(
            bools(eval(col("name").is_null())),
            [Some(false), Some(false), Some(true), Some(false)]
        );
        assert_eq!(
            bools(eval(col("balance").is_not_null())),
            [Some(true), Some(true), Some(true), Some(false)]
        );
        assert_eq!(bools(eval(lit(1).lt(2))), [Some(true); 4], "literals broadcast");
        assert_eq!(
            bools(eval(col("small").gt(2).and(true))),
            [Some(false), Some(false), Some(true), Some(true)]
        );
    }

    #[test]
    fn type_errors_name_the_column_its_type_and_the_literal() {
        let s = batch().schema();
        let err = col("name").lt(0).data_type(&s, "filter").unwrap_err().to_string();
        assert!(err.contains("\"name\"") && err.contains("Utf8") && err.contains('0'), "{err}");
        assert!(err.contains("filter"), "{err}");
        let err = col("nope").lt(0).data_type(&s, "filter").unwrap_err().to_string();
        assert!(
            err.contains("\"nope\"") && err.contains("name, balance, small, ratio, byte"),
            "{err}"
        );
        let err = (col("name") + 1).data_type(&s, "with_column").unwrap_err().to_string();
        assert!(err.contains("arithmetic") && err.contains("\"name\""), "{err}");
        let err =
            col("small").and(col("balance").lt(0)).data_type(&s, "f").unwrap_err().to_string();
        assert!(err.contains("\"small\"") && err.contains("Int32"), "{err}");
        let err = col("small").not().data_type(&s, "f").unwrap_err().to_string();
        assert!(err.contains("boolean"), "{err}");
        let err = col("flag")
            .eq(true)
            .data_type(&Schema::new(vec![Field::new("flag", DataType::Int64, true)]), "f");
        assert!(err.unwrap_err().to_string().contains("the literal true"));
    }

    #[test]
    fn expressions_travel_as_task_arguments() {
        let e = (col("a") + 1.5).lt(col("b")) & col("c").eq("x").not() | col("d").is_null();
        let p = rudask::core::registry::encode(&e).unwrap();
        let back: Expr = rudask::core::registry::decode(&p).unwrap();
        assert_eq!(back, e);
    }
}
