//! `#[derive(Module)]` for sinew-nn.
//!
//! The derive implements `Module::visit` for a struct by walking its fields in
//! declaration order: a field of type `Param` is a parameter, `Buffer` a buffer,
//! `Option<T>` visits its content when present, `Vec<T>` visits each element under the
//! name `field.i`, and any other type is a child module (it must implement `Module`).
//! `#[module(skip)]` leaves a field out (hyper-parameters, caches).
//!
//! The generated code names the crate as the deriving crate's `Cargo.toml` does: `::KEY`
//! when it depends on `sinew-nn` under the key `KEY` (`sinew_nn`, or a rename such as
//! `nn = { package = "sinew-nn", .. }`), else `::KEY::nn` for the `sinew` facade (also
//! renamed), else `::sinew::nn`. Normal dependencies (also target-specific ones) win over
//! dev-dependencies, sinew-nn over the facade; `[dependencies.sinew-nn]` tables, dotted
//! keys and renames inherited from `[workspace.dependencies]` are understood. Inside
//! sinew-nn it is `::sinew_nn`. `#[module(crate = "path")]` on the struct overrides all
//! of this.

use proc_macro::TokenStream;
use proc_macro2::TokenStream as Tokens;
use quote::{format_ident, quote};
use syn::{Data, DeriveInput, Fields, GenericArgument, PathArguments, Type, parse_macro_input};

mod manifest;

/// Derives `Module` (parameter, buffer and child discovery) for a struct.
#[proc_macro_derive(Module, attributes(module))]
pub fn derive_module(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match expand(&input) {
        Ok(t) => t.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// The path of the nn crate as seen from the crate being compiled.
fn crate_path(input: &DeriveInput) -> syn::Result<Tokens> {
    for attr in &input.attrs {
        if attr.path().is_ident("module") {
            let mut found = None;
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("crate") {
                    let lit: syn::LitStr = meta.value()?.parse()?;
                    found = Some(lit.parse::<syn::Path>()?);
                    Ok(())
                } else {
                    Err(meta.error("expected `crate = \"path\"`"))
                }
            })?;
            if let Some(p) = found {
                return Ok(quote!(#p));
            }
        }
    }
    // sinew-nn itself: its lib, tests and doctests all reach it as `::sinew_nn` (the lib
    // through `extern crate self as sinew_nn`), where `crate` would only work in the lib
    if std::env::var("CARGO_PKG_NAME").is_ok_and(|p| p == "sinew-nn") {
        return Ok(quote!(::sinew_nn));
    }
    let dir = std::env::var_os("CARGO_MANIFEST_DIR").map(std::path::PathBuf::from);
    let manifest = dir.as_ref().and_then(|d| std::fs::read_to_string(d.join("Cargo.toml")).ok());
    let found = manifest.and_then(|m| manifest::nn_path(&m, || workspace_manifest(dir.as_deref()?)));
    let ident = |key: &str| syn::parse_str::<syn::Ident>(key).ok();
    Ok(match found {
        Some(manifest::NnPath::Direct(key)) => match ident(&key) {
            Some(key) => quote!(::#key),
            None => quote!(::sinew_nn),
        },
        Some(manifest::NnPath::Facade(key)) => match ident(&key) {
            Some(key) => quote!(::#key::nn),
            None => quote!(::sinew::nn),
        },
        // no manifest to read, or neither crate in it: the facade's path, whose error
        // names `sinew`; `#[module(crate = "...")]` says otherwise
        None => quote!(::sinew::nn),
    })
}

/// The text of the nearest manifest at or above `dir` with a `[workspace]` table.
fn workspace_manifest(dir: &std::path::Path) -> Option<String> {
    dir.ancestors().find_map(|d| {
        let text = std::fs::read_to_string(d.join("Cargo.toml")).ok()?;
        text.lines().any(|l| l.trim_start().starts_with("[workspace")).then_some(text)
    })
}

fn is_skipped(field: &syn::Field) -> syn::Result<bool> {
    let mut skip = false;
    for attr in &field.attrs {
        if attr.path().is_ident("module") {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("skip") {
                    skip = true;
                    Ok(())
                } else {
                    Err(meta.error("expected `skip`"))
                }
            })?;
        }
    }
    Ok(skip)
}

/// The last path segment's name and its single generic argument, if any.
fn head(ty: &Type) -> Option<(String, Option<&Type>)> {
    let Type::Path(p) = ty else { return None };
    let seg = p.path.segments.last()?;
    let arg = match &seg.arguments {
        PathArguments::AngleBracketed(a) => a.args.iter().find_map(|g| match g {
            GenericArgument::Type(t) => Some(t),
            _ => None,
        }),
        _ => None,
    };
    Some((seg.ident.to_string(), arg))
}

/// Code visiting `value` (an expression of type `ty`) under `name` (an expression of type `&str`).
fn visit_value(krate: &Tokens, ty: &Type, value: Tokens, name: Tokens, depth: usize) -> Tokens {
    match head(ty) {
        Some((h, _)) if h == "Param" => quote!(v.param(#name, #value);),
        Some((h, _)) if h == "Buffer" => quote!(v.buffer(#name, #value);),
        Some((h, Some(inner))) if h == "Option" => {
            let item = format_ident!("item{}", depth);
            let body = visit_value(krate, inner, quote!(#item), name, depth + 1);
            quote!(if let Some(#item) = #value { #body })
        }
        Some((h, Some(inner))) if h == "Vec" => {
            let (i, item, n) =
                (format_ident!("i{}", depth), format_ident!("item{}", depth), format_ident!("name{}", depth));
            let body = visit_value(krate, inner, quote!(#item), quote!(&#n), depth + 1);
            quote!(for (#i, #item) in (#value).iter().enumerate() {
                let #n = format!("{}.{}", #name, #i);
                #body
            })
        }
        _ => quote!(v.module(#name, #value as &dyn #krate::Module);),
    }
}

fn expand(input: &DeriveInput) -> syn::Result<Tokens> {
    let krate = crate_path(input)?;
    let Data::Struct(data) = &input.data else {
        return Err(syn::Error::new_spanned(&input.ident, "#[derive(Module)] supports structs only"));
    };
    let mut body = Tokens::new();
    let fields: Vec<(String, Tokens, &syn::Field)> = match &data.fields {
        Fields::Named(named) => named
            .named
            .iter()
            .map(|f| {
                let id = f.ident.as_ref().expect("named field");
                (id.to_string(), quote!(&self.#id), f)
            })
            .collect(),
        Fields::Unnamed(un) => un
            .unnamed
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let idx = syn::Index::from(i);
                (i.to_string(), quote!(&self.#idx), f)
            })
            .collect(),
        Fields::Unit => Vec::new(),
    };
    for (name, access, field) in fields {
        if is_skipped(field)? {
            continue;
        }
        body.extend(visit_value(&krate, &field.ty, access, quote!(#name), 0));
    }
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    Ok(quote! {
        impl #impl_generics #krate::Module for #ident #ty_generics #where_clause {
            fn visit(&self, v: &mut dyn #krate::Visitor) {
                #body
            }
        }
    })
}
