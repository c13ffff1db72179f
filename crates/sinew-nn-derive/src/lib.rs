//! `#[derive(Module)]` for sinew-nn.
//!
//! The derive implements `Module::visit` for a struct by walking its fields in
//! declaration order: a field of type `Param` is a parameter, `Buffer` a buffer,
//! `Option<T>` visits its content when present, `Vec<T>` visits each element under the
//! name `field.i`, and any other type is a child module (it must implement `Module`).
//! `#[module(skip)]` leaves a field out (hyper-parameters, caches).
//!
//! The generated code names the crate `sinew_nn` when the deriving crate depends on
//! `sinew-nn`, and `sinew::nn` otherwise (the facade); `#[module(crate = "path")]` on
//! the struct overrides that.

use proc_macro::TokenStream;
use proc_macro2::TokenStream as Tokens;
use quote::{format_ident, quote};
use syn::{Data, DeriveInput, Fields, GenericArgument, PathArguments, Type, parse_macro_input};

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
    let pkg = std::env::var("CARGO_PKG_NAME").unwrap_or_default();
    let direct = pkg == "sinew-nn"
        || std::env::var("CARGO_MANIFEST_DIR")
            .ok()
            .and_then(|dir| std::fs::read_to_string(std::path::Path::new(&dir).join("Cargo.toml")).ok())
            .is_some_and(|manifest| {
                manifest.lines().any(|l| {
                    let l = l.trim_start();
                    l.starts_with("sinew-nn") && !l.starts_with("sinew-nn-derive")
                })
            });
    Ok(if direct { quote!(::sinew_nn) } else { quote!(::sinew::nn) })
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
