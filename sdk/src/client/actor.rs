//! Creating actors: [`Client::submit_actor`].

use super::{build_spec, lock, Client};
use crate::actor::{ctor_task, Actor, ActorType, Constructor};
use crate::error::{Error, Result};
use crate::future::Future;
use crate::runtime::actors::actor_key;
use crate::task::{encode_value, ArgSlot, IntoArgs, SubmitOptions, Task};
use rudask_core::protocol::{ClientMsg, ScatteredKey};
use rudask_core::Key;

/// The task that runs an actor's constructor on a worker; its result is the
/// name of the worker that keeps the actor.
struct CtorTask {
    id: &'static str,
    name: &'static str,
}

impl Task for CtorTask {
    type Args = ();
    type Output = String;
    fn id(&self) -> &'static str {
        self.id
    }
    fn name(&self) -> &'static str {
        self.name
    }
}

impl Client {
    /// Creates an actor: runs `constructor` (an associated function returning
    /// `Self` of a type whose `impl` block is marked `#[rudask::actor]`) with
    /// `args` on a worker the scheduler picks, and returns a handle once the
    /// actor exists. Arguments are values or `&Future`s, as for
    /// [`Client::submit`]. See [`crate::actor`](mod@crate::actor).
    ///
    /// Fails with [`Error::InvalidArgument`] when `constructor` is not a
    /// registered actor constructor, and with the constructor's error when it
    /// panics or returns `Err`.
    ///
    /// ```no_run
    /// # #[rudask::actor] pub struct Counter { n: u64 }
    /// # #[rudask::actor] impl Counter {
    /// #     pub fn new(n: u64) -> Self { Counter { n } }
    /// #     pub fn increment(&mut self) -> u64 { self.n += 1; self.n }
    /// # }
    /// # async fn demo(client: rudask::Client) -> rudask::Result<()> {
    /// let counter = client.submit_actor(Counter::new, (41,)).await?;
    /// assert_eq!(counter.increment().await?, 42);
    /// # Ok(()) }
    /// ```
    pub async fn submit_actor<C, Args, A>(&self, constructor: C, args: A) -> Result<Actor<C::Actor>>
    where
        C: Constructor<Args>,
        A: IntoArgs<Args>,
    {
        drop(constructor);
        let name = <C::Actor as ActorType>::NAME;
        let func = ctor_task::<C>().ok_or_else(|| {
            Error::InvalidArgument(format!(
                "{} is not an actor constructor: mark the impl block of {name} with \
                 #[rudask::actor] and pass an associated function that returns Self",
                std::any::type_name::<C>()
            ))
        })?;
        let id = fastrand::u64(..);
        let key = actor_key(id, name);
        // The constructor's key differs from the actor's, which the
        // scheduler learns as data held by the hosting worker once the actor
        // exists: data that is lost with its worker rather than recomputed,
        // so a dead worker's actor is not silently recreated elsewhere.
        let ctor_key = format!("{name}.new-{id:016x}");
        let mut slots = vec![ArgSlot::Value(encode_value(&id)?)];
        slots.extend(args.into_args()?);
        let options = SubmitOptions::new().pure(false);
        let task = CtorTask { id: func, name };
        let (spec, holds) = build_spec(&task, &options, slots, Some(ctor_key))?;
        let placed: Future<String> = self.inner.submit_spec(spec)?;
        holds.attach(placed.key_ref());
        let worker = placed.result().await?;
        let host = lock(&self.inner.shared.workers)
            .values()
            .find(|w| w.name == worker)
            .map(|w| (w.id, w.data_addr.clone()));
        let Some((host, addr)) = host else {
            return Err(Error::ActorLost { actor: key, worker });
        };
        let actor = Key::from(key.as_str());
        let item = ScatteredKey { key: actor.clone(), nbytes: 0, workers: vec![host] };
        let keep = self
            .inner
            .register(std::slice::from_ref(&actor), ClientMsg::UpdateData { items: vec![item] })?
            .pop()
            .expect("one key");
        drop(placed);
        Ok(Actor::placed(id, key, worker, addr, keep))
    }
}

impl Client {
    /// Wants the actor `key` on behalf of a handle decoded in a task, so
    /// that the actor lives while that handle does.
    pub(crate) fn hold_actor(&self, key: &str) -> Result<std::sync::Arc<crate::future::KeyRef>> {
        let key = Key::from(key);
        let keys = std::slice::from_ref(&key);
        let held = self.inner.register(keys, ClientMsg::Want { keys: keys.to_vec() })?;
        Ok(held.into_iter().next().expect("one key"))
    }
}
