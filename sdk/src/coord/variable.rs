use super::{timed_out, unexpected, waiting, Storable};
use crate::client::{Client, Grant};
use crate::error::Result;
use rudask_core::protocol::{CoordReply, CoordRequest};
use std::marker::PhantomData;
use std::time::Duration;

/// A named value on the scheduler that any client can set and read.
/// A `Variable<Future<T>>` keeps the future's result alive until it is
/// overwritten or deleted.
///
/// ```no_run
/// use rudask::coord::Variable;
/// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
/// let stop: Variable<bool> = Variable::new(&client, "stop");
/// stop.set(true).await?;
/// assert!(stop.get(None).await?);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Variable<T> {
    client: Client,
    name: String,
    what: String,
    _t: PhantomData<fn() -> T>,
}

impl<T: Storable> Variable<T> {
    /// A handle on variable `name`.
    ///
    /// ```no_run
    /// # fn demo(client: rudask::Client) {
    /// let v: rudask::coord::Variable<String> = rudask::coord::Variable::new(&client, "v");
    /// # }
    /// ```
    pub fn new(client: &Client, name: &str) -> Self {
        Variable {
            client: client.clone(),
            name: name.to_string(),
            what: format!("variable {name}"),
            _t: PhantomData,
        }
    }

    /// Sets the value (a future stored before is let go).
    ///
    /// ```no_run
    /// # async fn demo(v: rudask::coord::Variable<i64>) -> rudask::Result<()> {
    /// v.set(3).await?;
    /// # Ok(()) }
    /// ```
    pub async fn set(&self, value: T) -> Result<()> {
        let req = CoordRequest::VariableSet { name: self.name.clone(), value: value.to_wire()? };
        match self.client.inner().coord(req).await? {
            CoordReply::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// The value, waiting up to `timeout` for it to be set
    /// ([`crate::Error::Timeout`] after that).
    ///
    /// ```no_run
    /// # async fn demo(v: rudask::coord::Variable<i64>) -> rudask::Result<()> {
    /// let n = v.get(Some(std::time::Duration::from_secs(5))).await?;
    /// # Ok(()) }
    /// ```
    pub async fn get(&self, timeout: Option<Duration>) -> Result<T> {
        let (wait, t) = waiting(timeout);
        let req = CoordRequest::VariableGet { name: self.name.clone(), wait };
        match self.client.inner().coord_wait(req, t, Grant::Nothing).await?.1 {
            CoordReply::Values(mut vs) if vs.len() == 1 => {
                T::from_wire(&self.client, vs.pop().expect("one"), &self.what)
            }
            CoordReply::TimedOut => Err(timed_out(timeout)),
            other => Err(unexpected(other)),
        }
    }

    /// Unsets the variable (a stored future is let go).
    ///
    /// ```no_run
    /// # async fn demo(v: rudask::coord::Variable<i64>) -> rudask::Result<()> {
    /// v.delete().await?;
    /// # Ok(()) }
    /// ```
    pub async fn delete(&self) -> Result<()> {
        let req = CoordRequest::VariableDelete { name: self.name.clone() };
        match self.client.inner().coord(req).await? {
            CoordReply::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }
}
