//! Procedural macros of rudask, re-exported by the `rudask` crate.
//!
//! * [`macro@task`] turns a free function into a task: a unit struct that
//!   implements `rudask::Task` and is registered with the worker registry so
//!   that any process of the same binary can run it by id.
//! * [`macro@main`] wraps an `async fn main` so that the binary can also act
//!   as a worker and runs its body on a multi-threaded tokio runtime.
//!
//! The generated code only names items through absolute `::rudask::...`
//! paths, so users depend on `rudask` alone and never on this crate.

#![deny(missing_docs)]

mod actor;
mod plugin;

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2, TokenTree};
use quote::{quote, quote_spanned, ToTokens};
use syn::ext::IdentExt;
use syn::{
    Attribute, FnArg, GenericArgument, Ident, ItemFn, LitStr, Pat, PathArguments, ReturnType,
    Signature, Type,
};

/// Turns a free function into a rudask task.
///
/// The function is replaced by a unit struct of the same name which
/// implements `rudask::Task`:
///
/// * `NAME::call(..)` runs the original function directly in this process,
///   without any cluster;
/// * `client.submit(NAME, (arg1, arg2,))` runs it on the cluster; the
///   arguments are a tuple of the parameter types (`()` for no parameters,
///   `(x,)` for one) and must be serializable, as must the output.
///
/// The task id is `module_path!()::NAME`, so every process running the same
/// binary agrees on it, and the task is registered at start-up so that a
/// worker can decode its arguments, run it and encode its result.
///
/// A return type spelled `Result<T, E>` (any path whose last segment is
/// `Result`, e.g. `anyhow::Result<T>`) makes the task fallible: its output is
/// `T`, and an `Err(e)` becomes a task failure carrying the `Display` and
/// `Debug` renderings of `e` (so `E: Display + Debug`). Any other return type
/// is the output as is, and no return type means an output of `()`.
///
/// The function may be `async`; its parameters must be plain identifiers
/// (`mut x` is fine) of owned types. Generics, `self`, `unsafe`, `const`,
/// `extern` and variadic functions are rejected.
///
/// Doc comments move to the struct, `#[cfg(..)]` applies to everything
/// generated, and every other attribute stays on `NAME::call`, where it still
/// applies to the body.
///
/// ```ignore
/// /// Adds two numbers.
/// #[rudask::task]
/// fn add(a: i64, b: i64) -> i64 {
///     a + b
/// }
///
/// #[rudask::task]
/// async fn fetch(url: String) -> Result<String, std::io::Error> {
///     // ...
/// #   Ok(url)
/// }
///
/// assert_eq!(add::call(1, 2), 3);
/// let sum = client.submit(add, (1, 2)).await?;
/// let page = client.submit(fetch, ("https://example.org".to_string(),)).await?;
/// ```
#[proc_macro_attribute]
pub fn task(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(attr, item, expand_task)
}

/// Entry point of a rudask application: `#[rudask::main] async fn main()`.
///
/// The generated synchronous `main` first calls `rudask::init()`, which turns
/// the process into a worker when it was launched as one, either by
/// `LocalCluster::processes` or as `my-app worker --scheduler ADDR`; in that
/// case it never returns. Otherwise it runs the async body on a
/// multi-threaded tokio runtime and returns its result, so `-> R` (for
/// instance `-> anyhow::Result<()>`) and `?` work as usual.
///
/// Unlike `#[tokio::main]`, the body runs as a task spawned on the runtime,
/// on its worker threads, where the replies of an in-process cluster wake it
/// without a system call (sequential requests run an order of magnitude
/// faster). So the body must be `Send`; a program whose `main` holds
/// non-`Send` values across `.await` calls `rudask::init()` and builds its
/// own runtime instead. A panic in the body is resumed as the panic of `main`.
///
/// The function must be `async` and take no parameters nor generics.
///
/// ```ignore
/// #[rudask::main]
/// async fn main() -> anyhow::Result<()> {
///     let cluster = rudask::LocalCluster::processes(4).await?;
///     let client = cluster.client();
///     println!("{}", client.submit(add, (1, 2)).await?);
///     Ok(())
/// }
/// ```
#[proc_macro_attribute]
pub fn main(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(attr, item, expand_main)
}

/// Makes a struct an actor type: stateful objects living on one worker,
/// whose methods clients call directly there (see `rudask::actor`).
///
/// Put it on the struct and on its inherent `impl` block:
///
/// * on the struct, fields marked `#[actor(attr)]` become readable through
///   the handle as `attr_NAME()`;
/// * in the `impl` block, every non-private (`pub`, `pub(crate)`, ...)
///   associated function returning `Self` is a constructor, usable with
///   `client.submit_actor(Type::new, args)` (registered like a task, so any
///   worker binary linking the type can host it); every non-private function
///   taking `&self` or `&mut self` (sync or `async`)
///   becomes a method of the handle `Actor<Type>` returning an
///   `ActorFuture` of its output (`T` for a `Result<T, E>` return, whose
///   `Err` fails the call). Private functions and other items are left
///   alone, so helpers need not have serializable signatures.
///
/// Parameters must be plain identifiers of owned, serializable types;
/// generic actor types are not supported.
///
/// Calls on one actor run one at a time, in arrival order. On the `impl`
/// block, `#[rudask::actor(interleave)]` lets its `async fn`s taking `&self`
/// run concurrently with each other (interleaving at their `.await`s);
/// every other call still runs alone, after the `&self` calls that arrived
/// before it finished and before those arriving after it start. The type
/// must be `Sync` and the block must have a public async `&self` method, or
/// the macro's expansion fails to compile with an error pointing at
/// `interleave`:
///
/// ```ignore
/// #[rudask::actor]
/// pub struct Lookup {
///     hits: std::sync::atomic::AtomicU64,
/// }
///
/// #[rudask::actor(interleave)]
/// impl Lookup {
///     pub fn new() -> Self { Lookup { hits: Default::default() } }
///     // Concurrent with other `find` calls.
///     pub async fn find(&self, key: String) -> Option<String> { None }
///     // Alone.
///     pub fn reset(&mut self) { *self.hits.get_mut() = 0; }
/// }
/// ```
///
/// ```ignore
/// #[rudask::actor]
/// pub struct Counter {
///     #[actor(attr)]
///     n: u64,
/// }
///
/// #[rudask::actor]
/// impl Counter {
///     pub fn new(n: u64) -> Self { Counter { n } }
///     pub fn increment(&mut self) -> u64 { self.n += 1; self.n }
/// }
///
/// let c = client.submit_actor(Counter::new, (0,)).await?;
/// assert_eq!(c.increment().await?, 1);
/// assert_eq!(c.attr_n().await?, 1);
/// ```
#[proc_macro_attribute]
pub fn actor(attr: TokenStream, item: TokenStream) -> TokenStream {
    let attr = TokenStream2::from(attr);
    let item = TokenStream2::from(item);
    match syn::parse2(item.clone()).and_then(|i| actor::expand(attr, i)) {
        Ok(tokens) => tokens.into(),
        Err(err) => {
            let mut tokens = err.to_compile_error();
            tokens.extend(item);
            tokens.into()
        }
    }
}

/// Offers a plugin by name: put it on the function that builds the plugin
/// from its JSON configuration. Any binary linking the crate can then enable
/// it with `--plugin name[:json]` or `client.register_*_plugin(name, json)`.
///
/// ```ignore
/// use rudask::plugin::{PluginError, SchedulerPlugin};
///
/// #[derive(Debug)]
/// struct Quiet;
/// impl SchedulerPlugin for Quiet {
///     fn name(&self) -> &str { "quiet" }
/// }
///
/// #[rudask::plugin(scheduler = "quiet")]
/// fn quiet(_config: &str) -> Result<Box<dyn SchedulerPlugin>, PluginError> {
///     Ok(Box::new(Quiet))
/// }
/// ```
#[proc_macro_attribute]
pub fn plugin(attr: TokenStream, item: TokenStream) -> TokenStream {
    let attr = TokenStream2::from(attr);
    let item = TokenStream2::from(item);
    match syn::parse2(item.clone()).and_then(|f| plugin::expand(attr, f)) {
        Ok(tokens) => tokens.into(),
        Err(err) => {
            let mut tokens = err.to_compile_error();
            tokens.extend(item);
            tokens.into()
        }
    }
}

/// Shared driver of both macros: parses the function, rejects attribute
/// arguments and turns errors into `compile_error!`s.
fn expand(
    attr: TokenStream,
    item: TokenStream,
    expander: fn(ItemFn) -> Result<TokenStream2, syn::Error>,
) -> TokenStream {
    let attr = TokenStream2::from(attr);
    let item = TokenStream2::from(item);
    let func: ItemFn = match syn::parse2(item.clone()) {
        Ok(func) => func,
        Err(err) => return err.to_compile_error().into(),
    };
    let result = if attr.is_empty() {
        expander(func)
    } else {
        Err(syn::Error::new_spanned(attr, "this attribute takes no arguments"))
    };
    match result {
        Ok(tokens) => tokens.into(),
        // Re-emitting the untouched function keeps the error count down: the
        // body is still type-checked and its name still resolves.
        Err(err) => {
            let mut tokens = err.to_compile_error();
            tokens.extend(item);
            tokens.into()
        }
    }
}

/// Accumulates errors so that a single expansion reports all of them.
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, tokens: impl ToTokens, message: &str) {
        let err = syn::Error::new_spanned(tokens, message);
        match &mut self.0 {
            Some(first) => first.combine(err),
            None => self.0 = Some(err),
        }
    }

    fn finish(self) -> Result<(), syn::Error> {
        self.0.map_or(Ok(()), Err)
    }
}

/// Rejects the signature features that neither macro can support.
fn check_common(sig: &Signature, errors: &mut Errors) {
    if let Some(constness) = &sig.constness {
        errors.push(constness, "`const` functions are not supported here");
    }
    if let Some(unsafety) = &sig.unsafety {
        errors.push(unsafety, "`unsafe` functions are not supported here");
    }
    if let Some(abi) = &sig.abi {
        errors.push(abi, "`extern` functions are not supported here");
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(variadic, "variadic functions are not supported here");
    }
    if !sig.generics.params.is_empty() {
        errors.push(&sig.generics, "generic functions are not supported here");
    }
    if let Some(where_clause) = &sig.generics.where_clause {
        errors.push(where_clause, "`where` clauses are not supported here");
    }
}

/// What makes a type unusable in a task's argument tuple or output.
enum Unsupported {
    ImplTrait,
    Borrow,
    Lifetime,
}

impl Unsupported {
    fn message(&self) -> &'static str {
        match self {
            Unsupported::ImplTrait => "`impl Trait` types are not supported in tasks",
            Unsupported::Borrow => "task parameters must be owned types, not borrows",
            Unsupported::Lifetime => "task parameters cannot carry lifetimes",
        }
    }
}

/// Finds the first token of a type that cannot appear in a `Task` impl's
/// associated types, so the user gets an error pointing at it instead of a
/// confusing one about the generated code.
fn unsupported_in_type(ty: &Type) -> Option<(TokenTree, Unsupported)> {
    fn scan(tokens: TokenStream2) -> Option<(TokenTree, Unsupported)> {
        let mut previous_was_quote = false;
        for token in tokens {
            let found = match &token {
                TokenTree::Ident(ident) if ident == "impl" => Some(Unsupported::ImplTrait),
                TokenTree::Punct(punct) if punct.as_char() == '&' => Some(Unsupported::Borrow),
                TokenTree::Ident(_) if previous_was_quote => Some(Unsupported::Lifetime),
                TokenTree::Group(group) => {
                    if let Some(found) = scan(group.stream()) {
                        return Some(found);
                    }
                    None
                }
                _ => None,
            };
            if let Some(kind) = found {
                return Some((token, kind));
            }
            previous_was_quote = matches!(&token, TokenTree::Punct(p) if p.as_char() == '\'');
        }
        None
    }
    scan(ty.to_token_stream())
}

/// A parameter of a task function, with the `mut` already stripped.
struct Param<'a> {
    ident: &'a Ident,
    ty: &'a Type,
}

/// The output type of a task and whether it comes out of a `Result`.
enum Output<'a> {
    Unit,
    Plain(&'a Type),
    Fallible(&'a Type),
}

impl Output<'_> {
    fn ty(&self) -> TokenStream2 {
        match self {
            Output::Unit => quote!(()),
            Output::Plain(ty) | Output::Fallible(ty) => ty.to_token_stream(),
        }
    }
}

/// Statements that make `call` and turn its value into a task result (an
/// `Err` into a failure). A unit output is encoded directly: binding `()` to a
/// variable would trip clippy's `let_unit_value` in the user's crate.
fn run_and_encode(output: &Output<'_>, site: Span, call: TokenStream2) -> TokenStream2 {
    match output {
        Output::Unit => quote_spanned! {site=>
            #call;
            ::rudask::__private::task_result(())
        },
        Output::Plain(_) => quote_spanned! {site=>
            let __r = #call;
            ::rudask::__private::task_result(__r)
        },
        Output::Fallible(_) => quote_spanned! {site=>
            let __r = #call;
            let __r = __r.map_err(|e| ::rudask::__private::error_failure(&e))?;
            ::rudask::__private::task_result(__r)
        },
    }
}

fn output_of(output: &ReturnType) -> Output<'_> {
    let ReturnType::Type(_, ty) = output else {
        return Output::Unit;
    };
    let mut inner: &Type = ty;
    // Types forwarded through `macro_rules!` arrive wrapped in invisible groups.
    while let Type::Group(group) = inner {
        inner = &group.elem;
    }
    if let Type::Path(path) = inner {
        if let (None, Some(last)) = (&path.qself, path.path.segments.last()) {
            if let (true, PathArguments::AngleBracketed(args)) =
                (last.ident == "Result", &last.arguments)
            {
                let first_type = args.args.iter().find_map(|arg| match arg {
                    GenericArgument::Type(ty) => Some(ty),
                    _ => None,
                });
                if let Some(ty) = first_type {
                    return Output::Fallible(ty);
                }
            }
        }
    }
    Output::Plain(ty)
}

/// Splits the function's attributes: docs describe the struct, `cfg` must
/// gate every generated item, and the rest (lints, `inline`, `must_use`, …)
/// only make sense on the function that keeps the body.
fn split_attrs(attrs: &[Attribute]) -> (Vec<&Attribute>, Vec<&Attribute>, Vec<&Attribute>) {
    let (mut docs, mut cfgs, mut others) = (Vec::new(), Vec::new(), Vec::new());
    for attr in attrs {
        if attr.path().is_ident("doc") {
            docs.push(attr);
        } else if attr.path().is_ident("cfg") {
            cfgs.push(attr);
        } else {
            others.push(attr);
        }
    }
    (docs, cfgs, others)
}

fn expand_task(func: ItemFn) -> Result<TokenStream2, syn::Error> {
    let ItemFn { attrs, vis, sig, block } = &func;
    let mut errors = Errors::default();
    check_common(sig, &mut errors);

    let mut params = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(receiver) => {
                errors.push(receiver, "tasks must be free functions, without `self`");
            }
            FnArg::Typed(typed) => {
                match &*typed.pat {
                    Pat::Ident(pat) if pat.by_ref.is_none() && pat.subpat.is_none() => {
                        params.push(Param { ident: &pat.ident, ty: &typed.ty });
                    }
                    pat => errors.push(pat, "task parameters must be plain identifiers"),
                }
                if let Some((token, kind)) = unsupported_in_type(&typed.ty) {
                    errors.push(token, kind.message());
                }
            }
        }
    }
    if let ReturnType::Type(_, ty) = &sig.output {
        // Borrowed outputs such as `&'static str` can still be serialized, so
        // only `impl Trait` is fatal here.
        if let Some((token, Unsupported::ImplTrait)) = unsupported_in_type(ty) {
            errors.push(token, Unsupported::ImplTrait.message());
        }
    }
    errors.finish()?;

    let name = &sig.ident;
    let name_str = LitStr::new(&name.unraw().to_string(), name.span());
    let (docs, cfgs, others) = split_attrs(attrs);
    let asyncness = &sig.asyncness;
    let inputs = &sig.inputs;
    let ret = &sig.output;
    let output = output_of(ret);
    let output_ty = output.ty();
    let tys: Vec<_> = params.iter().map(|p| p.ty).collect();
    let idents: Vec<_> = params.iter().map(|p| p.ident).collect();
    let param_names: Vec<_> =
        params.iter().map(|p| LitStr::new(&p.ident.unraw().to_string(), p.ident.span())).collect();
    let indices = 0..params.len();
    let len = params.len();

    // Mixed-site hygiene keeps `args`, `__r` and `e` apart from parameters
    // that happen to share those names.
    let site = Span::mixed_site();
    let await_call = asyncness.as_ref().map(|_| quote!(.await));
    let call = quote_spanned!(site=> #name::call(#(#idents),*) #await_call);
    let run_and_encode = run_and_encode(&output, site, call);
    let body = quote_spanned! {site=>
        args.expect_len(#len)?;
        #(let #idents: #tys = args.get(#indices, #param_names)?;)*
        #run_and_encode
    };
    let task_call = if asyncness.is_some() {
        quote_spanned! {site=>
            ::rudask::__private::TaskCall::Async(::std::boxed::Box::pin(async move { #body }))
        }
    } else {
        quote_spanned! {site=>
            ::rudask::__private::TaskCall::Sync(::std::boxed::Box::new(move || { #body }))
        }
    };
    let args = Ident::new("args", site);

    Ok(quote! {
        #(#cfgs)*
        #(#docs)*
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug, Default)]
        #vis struct #name;

        #(#cfgs)*
        impl #name {
            /// Calls the function directly in this process, without a cluster.
            #(#others)*
            #vis #asyncness fn call(#inputs) #ret #block
        }

        #(#cfgs)*
        impl ::rudask::Task for #name {
            type Args = (#(#tys,)*);
            type Output = #output_ty;

            fn id(&self) -> &'static str {
                ::core::concat!(::core::module_path!(), "::", #name_str)
            }

            fn name(&self) -> &'static str {
                #name_str
            }
        }

        #(#cfgs)*
        ::rudask::__private::inventory::submit! {
            ::rudask::__private::TaskDef {
                id: ::core::concat!(::core::module_path!(), "::", #name_str),
                prepare: {
                    fn __rudask_prepare(
                        #args: ::rudask::__private::TaskArgs,
                    ) -> ::rudask::__private::TaskCall {
                        #task_call
                    }
                    __rudask_prepare
                },
            }
        }
    })
}

fn expand_main(func: ItemFn) -> Result<TokenStream2, syn::Error> {
    let ItemFn { attrs, vis, sig, block } = &func;
    let mut errors = Errors::default();
    check_common(sig, &mut errors);
    if sig.asyncness.is_none() {
        errors.push(sig.fn_token, "`#[rudask::main]` requires an `async fn`");
    }
    if !sig.inputs.is_empty() {
        errors.push(&sig.inputs, "`main` cannot take parameters");
    }
    errors.finish()?;

    let name = &sig.ident;
    let ret = &sig.output;
    // The body runs as a task on the runtime's worker threads rather than on
    // the thread that blocks on it: waking a task on a worker thread from
    // another is cheap, waking the blocked main thread is a system call, and
    // a sequential client (one request, one reply) would pay it twice a call.
    Ok(quote! {
        #(#attrs)*
        #vis fn #name() #ret {
            ::rudask::init();
            let runtime = ::rudask::__private::tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("failed to start the tokio runtime");
            match runtime.block_on(runtime.spawn(async move #block)) {
                ::std::result::Result::Ok(value) => value,
                ::std::result::Result::Err(e) => ::std::panic::resume_unwind(e.into_panic()),
            }
        }
    })
}
