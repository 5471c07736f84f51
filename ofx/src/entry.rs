//! The plugin side of the entry points: `OfxGetPlugin`'s struct, `setHost`, and a `mainEntry`
//! that parses the action, checks handles and never lets a panic reach the host.

use crate::effect::ImageEffect;
use crate::error::{status_name, OfxError, Result};
use crate::property::PropertySet;
use crate::suites;
use crate::sys::*;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// An action name, parsed. Unknown actions (future OFX versions, host extensions) are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action<'a> {
    Load,
    Unload,
    Describe,
    DescribeInContext,
    CreateInstance,
    DestroyInstance,
    PurgeCaches,
    SyncPrivateData,
    BeginInstanceChanged,
    InstanceChanged,
    EndInstanceChanged,
    BeginInstanceEdit,
    EndInstanceEdit,
    GetClipPreferences,
    GetRegionOfDefinition,
    GetRegionsOfInterest,
    GetTimeDomain,
    GetFramesNeeded,
    IsIdentity,
    BeginSequenceRender,
    Render,
    EndSequenceRender,
    Other(&'a CStr),
}

impl<'a> Action<'a> {
    pub fn parse(name: &'a CStr) -> Action<'a> {
        const TABLE: &[(&CStr, Action<'static>)] = &[
            (kOfxActionLoad, Action::Load),
            (kOfxActionUnload, Action::Unload),
            (kOfxActionDescribe, Action::Describe),
            (
                kOfxImageEffectActionDescribeInContext,
                Action::DescribeInContext,
            ),
            (kOfxActionCreateInstance, Action::CreateInstance),
            (kOfxActionDestroyInstance, Action::DestroyInstance),
            (kOfxActionPurgeCaches, Action::PurgeCaches),
            (kOfxActionSyncPrivateData, Action::SyncPrivateData),
            (kOfxActionBeginInstanceChanged, Action::BeginInstanceChanged),
            (kOfxActionInstanceChanged, Action::InstanceChanged),
            (kOfxActionEndInstanceChanged, Action::EndInstanceChanged),
            (kOfxActionBeginInstanceEdit, Action::BeginInstanceEdit),
            (kOfxActionEndInstanceEdit, Action::EndInstanceEdit),
            (
                kOfxImageEffectActionGetClipPreferences,
                Action::GetClipPreferences,
            ),
            (
                kOfxImageEffectActionGetRegionOfDefinition,
                Action::GetRegionOfDefinition,
            ),
            (
                kOfxImageEffectActionGetRegionsOfInterest,
                Action::GetRegionsOfInterest,
            ),
            (kOfxImageEffectActionGetTimeDomain, Action::GetTimeDomain),
            (
                kOfxImageEffectActionGetFramesNeeded,
                Action::GetFramesNeeded,
            ),
            (kOfxImageEffectActionIsIdentity, Action::IsIdentity),
            (
                kOfxImageEffectActionBeginSequenceRender,
                Action::BeginSequenceRender,
            ),
            (kOfxImageEffectActionRender, Action::Render),
            (
                kOfxImageEffectActionEndSequenceRender,
                Action::EndSequenceRender,
            ),
        ];
        TABLE
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(Action::Other(name), |(_, a)| *a)
    }
}

/// The non-error outcomes of an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// `kOfxStatOK`: the action was handled.
    Ok,
    /// `kOfxStatReplyDefault`: not handled, let the host do its default.
    Default,
}

/// The handle and argument sets of one action, NULL-checked.
#[derive(Debug, Clone, Copy)]
pub struct ActionArgs {
    pub effect: Option<ImageEffect>,
    pub in_args: Option<PropertySet>,
    pub out_args: Option<PropertySet>,
}

impl ActionArgs {
    /// The effect handle, or `kOfxStatErrBadHandle` when the host passed NULL.
    pub fn effect(&self) -> Result<ImageEffect> {
        self.effect
            .ok_or_else(|| OfxError::bad_handle("the action needs an effect handle"))
    }
    pub fn in_args(&self) -> Result<PropertySet> {
        self.in_args
            .ok_or_else(|| OfxError::bad_handle("the action needs inArgs"))
    }
    pub fn out_args(&self) -> Result<PropertySet> {
        self.out_args
            .ok_or_else(|| OfxError::bad_handle("the action needs outArgs"))
    }
}

/// One image-effect plugin. `main_entry` receives every action, already parsed; write one
/// explicit `match` over [`Action`], as the OFX C examples do.
pub trait Plugin: 'static {
    /// Reverse-domain identifier, without `-` (Nuke builds node names from it).
    const IDENTIFIER: &'static CStr;
    const VERSION_MAJOR: u32;
    const VERSION_MINOR: u32;

    fn main_entry(action: Action<'_>, args: ActionArgs) -> Result<Reply>;
}

/// Runs `body`, turning errors into their status and panics into `kOfxStatFailed` (logged to
/// stderr): a panic must never unwind into the host.
pub fn guard(plugin: &CStr, action: &str, body: impl FnOnce() -> Result<Reply>) -> OfxStatus {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(Reply::Ok)) => kOfxStatOK,
        Ok(Ok(Reply::Default)) => kOfxStatReplyDefault,
        Ok(Err(e)) => {
            if e.status != kOfxStatReplyDefault && e.status != kOfxStatOK {
                eprintln!("[ofx] {}: {action} failed: {e}", plugin.to_string_lossy());
            }
            e.status
        }
        Err(panic) => {
            let text = t2v_support::panic_message(panic.as_ref());
            eprintln!(
                "[ofx] {}: panic in {action}: {text}; returning {}",
                plugin.to_string_lossy(),
                status_name(kOfxStatFailed)
            );
            kOfxStatFailed
        }
    }
}

/// The `mainEntry` of plugin `P`.
///
/// Fetches the suites before `P` sees `Load` and forgets them after `Unload`.
///
/// # Safety
/// Called by the host with `action` a NUL-terminated string (or NULL, rejected) and
/// handles that are NULL or valid for the action, as `ofxCore.h` specifies.
pub unsafe extern "C" fn main_entry<P: Plugin>(
    action: *const c_char,
    handle: *const c_void,
    in_args: OfxPropertySetHandle,
    out_args: OfxPropertySetHandle,
) -> OfxStatus {
    if action.is_null() {
        return kOfxStatErrBadHandle;
    }
    // SAFETY: non-NULL, and the host passes a NUL-terminated action name valid for the call.
    let action_name = unsafe { CStr::from_ptr(action) };
    let action = Action::parse(action_name);
    let label = action_name.to_string_lossy();
    guard(P::IDENTIFIER, &label, || {
        let loaded = match action {
            Action::Load => suites::fetch_all()?,
            _ => suites::get()?,
        };
        let property = loaded.property()?;
        let args = ActionArgs {
            effect: ImageEffect::new(handle as OfxImageEffectHandle, loaded),
            in_args: PropertySet::new(in_args, property),
            out_args: PropertySet::new(out_args, property),
        };
        let result = P::main_entry(action, args);
        if action == Action::Unload {
            suites::forget();
        }
        result
    })
}

/// The `OfxPlugin` struct of one plugin, as a `static`.
#[repr(transparent)]
pub struct PluginEntry(OfxPlugin);

// SAFETY: the struct only holds pointers to 'static C strings and functions; nothing writes it.
unsafe impl Sync for PluginEntry {}

impl PluginEntry {
    pub const fn new<P: Plugin>() -> Self {
        PluginEntry(OfxPlugin {
            pluginApi: kOfxImageEffectPluginApi.as_ptr(),
            apiVersion: kOfxImageEffectPluginApiVersion as c_int,
            pluginIdentifier: P::IDENTIFIER.as_ptr(),
            pluginVersionMajor: P::VERSION_MAJOR,
            pluginVersionMinor: P::VERSION_MINOR,
            setHost: Some(suites::set_host),
            mainEntry: Some(main_entry::<P>),
        })
    }

    pub fn raw(&self) -> &OfxPlugin {
        &self.0
    }
}

/// `OfxGetPlugin(nth)` over a table; NULL for an index out of range.
pub fn plugin_at(plugins: &'static [PluginEntry], nth: c_int) -> *mut OfxPlugin {
    usize::try_from(nth)
        .ok()
        .and_then(|i| plugins.get(i))
        // The host only reads the struct; OFX's C signature is simply not const.
        .map_or(std::ptr::null_mut(), |p| {
            &p.0 as *const OfxPlugin as *mut OfxPlugin
        })
}

/// Exports `OfxGetNumberOfPlugins` and `OfxGetPlugin` for the given [`Plugin`] types.
#[macro_export]
macro_rules! export_plugins {
    ($($plugin:ty),+ $(,)?) => {
        static OFX_PLUGIN_TABLE: &[$crate::PluginEntry] = &[$($crate::PluginEntry::new::<$plugin>()),+];

        #[no_mangle]
        pub extern "C" fn OfxGetNumberOfPlugins() -> ::std::ffi::c_int {
            OFX_PLUGIN_TABLE.len() as ::std::ffi::c_int
        }

        #[no_mangle]
        pub extern "C" fn OfxGetPlugin(nth: ::std::ffi::c_int) -> *mut $crate::sys::OfxPlugin {
            $crate::entry::plugin_at(OFX_PLUGIN_TABLE, nth)
        }
    };
}

/// Keeps this plugin binary mapped for the rest of the process, even after the host's
/// `dlclose`. For plugins whose runtime leaves code behind that may still run after `Unload`:
/// thread-local destructors that Rust's standard library registers on host threads (run when
/// those threads exit), or thread pools of libraries that are never joined. Call it at `Load`.
/// A later load of the same file gets the same, still mapped, binary (statics keep their
/// values: reset them at `Unload`). Returns whether the binary is pinned; Linux, macOS and
/// Windows are supported (elsewhere it returns false).
pub fn pin_binary() -> bool {
    pin::pin()
}

/// The path of the binary this code runs in (the plugin's `.ofx`, not the host's executable),
/// from which a plugin finds its bundle's `Resources`. Linux, macOS and Windows (elsewhere
/// `None`).
pub fn binary_path() -> Option<std::path::PathBuf> {
    pin::binary_path()
}

#[cfg(any(target_os = "linux", target_os = "macos"))]
mod pin {
    use std::ffi::{c_char, c_int, c_void};

    #[repr(C)]
    struct DlInfo {
        dli_fname: *const c_char,
        dli_fbase: *mut c_void,
        dli_sname: *const c_char,
        dli_saddr: *mut c_void,
    }

    extern "C" {
        fn dladdr(addr: *const c_void, info: *mut DlInfo) -> c_int;
        fn dlopen(filename: *const c_char, flags: c_int) -> *mut c_void;
    }

    // RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE
    #[cfg(target_os = "linux")]
    const FLAGS: c_int = 0x2 | 0x4 | 0x1000;
    #[cfg(target_os = "macos")]
    const FLAGS: c_int = 0x2 | 0x10 | 0x80;

    /// `dladdr` of one of this binary's functions.
    fn own_info() -> Option<DlInfo> {
        let mut info = DlInfo {
            dli_fname: std::ptr::null(),
            dli_fbase: std::ptr::null_mut(),
            dli_sname: std::ptr::null(),
            dli_saddr: std::ptr::null_mut(),
        };
        // SAFETY: dladdr only reads the address (one of this binary's functions) and fills the
        // Dl_info struct, whose C layout DlInfo mirrors.
        if unsafe { dladdr(own_info as *const c_void, &mut info) } == 0 || info.dli_fname.is_null()
        {
            return None;
        }
        Some(info)
    }

    pub fn binary_path() -> Option<std::path::PathBuf> {
        let info = own_info()?;
        // SAFETY: dli_fname is a NUL-terminated path owned by the loader, valid while this binary
        // is loaded, which it is while this function runs; it is copied before returning.
        let name = unsafe { std::ffi::CStr::from_ptr(info.dli_fname) };
        Some(std::path::PathBuf::from(
            name.to_string_lossy().into_owned(),
        ))
    }

    pub fn pin() -> bool {
        let Some(info) = own_info() else { return false };
        // SAFETY: dli_fname is a NUL-terminated path owned by the loader, valid while the binary
        // is loaded (it is: we are running in it). RTLD_NOLOAD only re-opens what is already
        // loaded; the handle is deliberately never closed.
        !unsafe { dlopen(info.dli_fname, FLAGS) }.is_null()
    }
}

#[cfg(windows)]
mod pin {
    use std::ffi::{c_void, OsString};
    use std::os::windows::ffi::OsStringExt;
    use std::path::PathBuf;

    type Hmodule = *mut c_void;

    const FROM_ADDRESS: u32 = 0x4;
    const UNCHANGED_REFCOUNT: u32 = 0x2;
    const PIN: u32 = 0x1;
    /// The longest path `GetModuleFileNameW` can return.
    const MAX_WIDE_PATH: usize = 32_768;

    #[link(name = "kernel32")]
    extern "system" {
        fn GetModuleHandleExW(flags: u32, name: *const u16, module: *mut Hmodule) -> i32;
        fn GetModuleFileNameW(module: Hmodule, name: *mut u16, size: u32) -> u32;
    }

    /// The module (DLL) this function is in; `flags` add to `FROM_ADDRESS`.
    fn own_module(flags: u32) -> Option<Hmodule> {
        let mut module: Hmodule = std::ptr::null_mut();
        // SAFETY: with FROM_ADDRESS the name is an address inside a module (this function's);
        // the call only writes the module handle.
        let ok = unsafe {
            GetModuleHandleExW(FROM_ADDRESS | flags, own_module as *const u16, &mut module)
        };
        (ok != 0 && !module.is_null()).then_some(module)
    }

    pub fn binary_path() -> Option<PathBuf> {
        let module = own_module(UNCHANGED_REFCOUNT)?;
        let mut name = vec![0u16; 512];
        loop {
            // SAFETY: the buffer holds `name.len()` u16s; the call writes at most that many.
            let n = unsafe { GetModuleFileNameW(module, name.as_mut_ptr(), name.len() as u32) }
                as usize;
            if n == 0 {
                return None;
            }
            // A full buffer means the path was cut short: try again with more room.
            if n < name.len() {
                name.truncate(n);
                return Some(PathBuf::from(OsString::from_wide(&name)));
            }
            if name.len() >= MAX_WIDE_PATH {
                return None;
            }
            name.resize(name.len() * 2, 0);
        }
    }

    pub fn pin() -> bool {
        own_module(PIN).is_some()
    }
}

#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
mod pin {
    pub fn pin() -> bool {
        false
    }

    pub fn binary_path() -> Option<std::path::PathBuf> {
        None
    }
}
