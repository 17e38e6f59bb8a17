//! `#[rudask::plugin(scheduler = "name")]` / `#[rudask::plugin(worker = "name")]`:
//! offers the plugin that a constructor function builds, by name, through the
//! registries of `rudask::plugin`.

use proc_macro2::TokenStream as TokenStream2;
use quote::quote;
use syn::{ItemFn, LitStr};

/// Which registry the plugin goes to.
enum Kind {
    Scheduler,
    Worker,
}

fn parse_args(attr: TokenStream2) -> syn::Result<(Kind, LitStr)> {
    let usage = "expected #[rudask::plugin(scheduler = \"name\")] or \
                 #[rudask::plugin(worker = \"name\")]";
    let mut found = None;
    let parser = syn::meta::parser(|meta| {
        let kind = if meta.path.is_ident("scheduler") {
            Kind::Scheduler
        } else if meta.path.is_ident("worker") {
            Kind::Worker
        } else {
            return Err(meta.error(usage));
        };
        if found.is_some() {
            return Err(meta.error("a plugin has one kind and one name"));
        }
        found = Some((kind, meta.value()?.parse::<LitStr>()?));
        Ok(())
    });
    syn::parse::Parser::parse2(parser, attr.clone())?;
    found.ok_or_else(|| syn::Error::new_spanned(attr, usage))
}

/// Keeps the function and registers it as the plugin's constructor.
pub(crate) fn expand(attr: TokenStream2, func: ItemFn) -> syn::Result<TokenStream2> {
    let (kind, name) = parse_args(attr)?;
    if func.sig.inputs.len() != 1 || func.sig.asyncness.is_some() {
        return Err(syn::Error::new_spanned(
            &func.sig,
            "a plugin constructor is a plain `fn(config: &str) -> Result<Box<dyn ...Plugin>, PluginError>`",
        ));
    }
    let ident = &func.sig.ident;
    let register = match kind {
        Kind::Scheduler => quote! { ::rudask::register_scheduler_plugin!(#name, #ident); },
        Kind::Worker => quote! { ::rudask::register_worker_plugin!(#name, #ident); },
    };
    Ok(quote! {
        #func
        #register
    })
}
