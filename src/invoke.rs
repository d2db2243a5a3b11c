//! Calls of any export by name with WAVE text: for diagnostics and for
//! components that are not stream stages, under the same limits as any call.

use wasmtime::component::wasm_wave::untyped::UntypedFuncCall;
use wasmtime::component::{Func, Type, Val};
use wasmtime::Store;

use crate::dynamic::drop_handles;
use crate::error::{Error, Result};
use crate::gate::{enter, Gate};
use crate::instance::{Body, WasmtimeInstance};
use crate::store::StoreState;

impl<G: Gate> Body<G> {
    /// `invoke` through either gate.
    pub(crate) async fn invoke(this: &mut WasmtimeInstance, call: &str) -> Result<String> {
        this.invoke_with::<G>(call).await
    }
}

impl WasmtimeInstance {
    /// `invoke` through either gate.
    pub(crate) async fn invoke_with<G: Gate>(&mut self, call: &str) -> Result<String> {
        let component = self.component().clone();
        let bad = |detail: String| Error::BadCall {
            component: component.name().to_string(),
            call: call.to_string(),
            detail,
        };
        let open = call
            .find('(')
            .ok_or_else(|| bad("expected `name(arguments)`".into()))?;
        let name = call[..open].trim();
        let func = self
            .find_func(name)
            .map_err(|detail| bad(detail.to_string()))?;
        let ty = func.ty(&*self.store_mut());
        let param_types: Vec<Type> = ty.params().map(|(_, ty)| ty).collect();
        // WAVE names are plain labels; the real name was resolved above.
        let arguments = format!("f{}", &call[open..]);
        let params: Vec<Val> = UntypedFuncCall::parse(&arguments)
            .and_then(|parsed| parsed.to_wasm_params(param_types.iter()))
            .map_err(|e| bad(e.to_string()))?;
        let mut results = vec![Val::Bool(false); ty.results().len()];
        let call = self.begin::<G>(name, None)?;
        let result = enter!(
            G,
            func,
            call / call_async(&mut *call.store, &params, &mut results)
        );
        call.finish(Some(result))?;
        // WAVE cannot show handles (its writer would panic): release them and say so.
        let store = self.store_mut();
        let handles = results
            .iter()
            .fold(false, |any, value| drop_handles(&mut *store, value) | any);
        if handles {
            return Err(bad(
                "the result holds resource handles, which WAVE cannot show; they were dropped"
                    .into(),
            ));
        }
        let texts: Vec<String> = results
            .iter()
            .map(|value| value.to_wave().map_err(|e| bad(format!("{e:#}"))))
            .collect::<Result<_>>()?;
        Ok(texts.join(", "))
    }

    fn find_func(&mut self, name: &str) -> std::result::Result<Func, String> {
        let instance = self.instance;
        let component = self.component().clone();
        let store = self.store_mut();
        let lookup = |store: &mut Store<StoreState>, interface: &str, func: &str| {
            let instance_index = instance.get_export_index(&mut *store, None, interface)?;
            let func_index = instance.get_export_index(&mut *store, Some(&instance_index), func)?;
            instance.get_func(&mut *store, func_index)
        };
        if let Some((interface, func)) = name.split_once('#') {
            return lookup(store, interface, func)
                .ok_or_else(|| format!("no function `{func}` in exported `{interface}`"));
        }
        if let Some(func) = instance.get_func(&mut *store, name) {
            return Ok(func);
        }
        let owners: Vec<String> = component
            .exports()
            .iter()
            .filter(|export| lookup(&mut *store, &export.name, name).is_some())
            .map(|export| export.name.clone())
            .collect();
        match owners.as_slice() {
            [owner] => lookup(store, owner, name).ok_or_else(|| format!("no function `{name}`")),
            [] => Err(format!("no exported function `{name}`")),
            many => Err(format!(
                "`{name}` is exported by {}; say which with `interface#{name}`",
                many.join(", ")
            )),
        }
    }
}
