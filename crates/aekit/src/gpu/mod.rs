//! The CUDA backend (cargo feature `cuda`): one device handle with its
//! stream, cuBLAS and the element-wise kernels compiled by NVRTC, the GPU's
//! GEMM door, and two trainers over it: [`net`] (minibatch training of the
//! dense models, parameters and optimizer state resident on the device)
//! and [`tied`] (exact per-example SGD of the tied autoencoder in one
//! persistent kernel). The sparse autoencoder's full-batch cost on the
//! device lives beside its model (`models::sparse_ae::gpu`), as the dense
//! models' GPU descriptions do.
//!
//! CUDA is loaded at run time, so a build needs none installed; [`Gpu::open`]
//! checks that the driver, cuBLAS and NVRTC libraries are present before it
//! touches any of them and answers with an error, never a panic.
//!
//! Device memory is handled through raw device addresses (`u64`) passed to
//! kernels and cuBLAS, with ownership kept in `CudaSlice`s: every address
//! handed to a kernel belongs to a buffer that outlives the stream's work,
//! because each trainer synchronises the stream before it returns.
#![allow(unsafe_code)]

pub mod conv;
pub mod fit;
pub mod net;
pub mod opt;
pub mod tied;

use crate::error::{Error, Result};
use cudarc::cublas::{sys as cublas_sys, CudaBlas};
use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, DevicePtr, DeviceRepr, LaunchConfig, PushKernelArg,
};
use std::sync::Arc;

const SOURCE: &str = include_str!("kernels.cu");

/// The kernels of `kernels.cu`, by name.
const KERNELS: [&str; 29] = [
    "gather_corrupt",
    "gather_labels",
    "bias_act",
    "act_back",
    "head_xent",
    "head_squared",
    "head_softmax",
    "col_sum",
    "sgd_step",
    "adam_step",
    "tied_sgd_epoch",
    "count_errors",
    "im2col_b",
    "col2im_b",
    "nchw_to_cnhw",
    "cnhw_to_nchw",
    "add_channel_bias",
    "channel_sum",
    "maxpool_fwd",
    "maxpool_bwd",
    "unpool_fwd",
    "unpool_bwd",
    "upsample_fwd",
    "upsample_bwd",
    "act_fwd",
    "act_bwd",
    "sparse_kl",
    "sparse_delta",
    "decay_sq",
];

fn gpu_err(what: &str, e: impl std::fmt::Debug) -> Error {
    Error::Device(format!("{what}: {e:?}"))
}

/// One GPU, ready to run aekit's kernels.
pub struct Gpu {
    pub(crate) ctx: Arc<CudaContext>,
    pub(crate) stream: Arc<CudaStream>,
    blas: CudaBlas,
    funcs: Vec<(&'static str, CudaFunction)>,
    name: String,
    sms: usize,
}

impl Gpu {
    /// Opens GPU `ordinal`: checks the CUDA libraries, creates the context
    /// and stream, and compiles the kernels.
    pub fn open(ordinal: usize) -> Result<Gpu> {
        // A missing library would panic deep inside the loader: look first.
        let missing = [
            // SAFETY: each only tries to dlopen the library and reports whether it could.
            ("the CUDA driver (libcuda.so)", unsafe {
                cudarc::driver::sys::is_culib_present()
            }),
            ("cuBLAS (libcublas.so.13)", unsafe {
                cudarc::cublas::sys::is_culib_present()
            }),
            ("NVRTC (libnvrtc.so.13)", unsafe {
                cudarc::nvrtc::sys::is_culib_present()
            }),
        ];
        if let Some((name, _)) = missing.iter().find(|(_, ok)| !ok) {
            return Err(Error::Device(format!(
                "cannot use cuda:{ordinal}: {name} was not found; install the NVIDIA driver and CUDA 13 \
                 (or put their lib folders on LD_LIBRARY_PATH), or train with --device cpu"
            )));
        }
        // Anything else the bindings cannot find (a symbol of an older driver) panics: catch it.
        std::panic::catch_unwind(|| Gpu::open_checked(ordinal)).unwrap_or_else(|p| {
            let why = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown failure".into());
            Err(Error::Device(format!("cannot use cuda:{ordinal}: {why}")))
        })
    }

    fn open_checked(ordinal: usize) -> Result<Gpu> {
        let count = CudaContext::device_count().map_err(|e| gpu_err("counting GPUs", e))?;
        if ordinal >= count.max(0) as usize {
            return Err(Error::Device(format!(
                "cuda:{ordinal} does not exist: this machine has {count} GPU(s)"
            )));
        }
        let ctx = CudaContext::new(ordinal).map_err(|e| gpu_err("creating a CUDA context", e))?;
        // One stream: no cross-stream events needed around each launch.
        // SAFETY: aekit uses one stream per context and synchronises it itself.
        unsafe { ctx.disable_event_tracking() };
        let stream = ctx.default_stream();
        let blas = CudaBlas::new(stream.clone()).map_err(|e| gpu_err("starting cuBLAS", e))?;
        let arch = match ctx.compute_capability() {
            Ok((7, 5)) => Some("compute_75"),
            Ok((8, 0)) => Some("compute_80"),
            Ok((8, 6)) => Some("compute_86"),
            Ok((8, 9)) => Some("compute_89"),
            Ok((9, 0)) => Some("compute_90"),
            Ok((10, 0)) => Some("compute_100"),
            Ok((12, 0)) => Some("compute_120"),
            _ => None,
        };
        let ptx = compile_kernels(arch)?;
        let module = ctx
            .load_module(ptx)
            .map_err(|e| gpu_err("loading the kernels", e))?;
        let mut funcs = Vec::new();
        for name in KERNELS {
            let f = module
                .load_function(name)
                .map_err(|e| gpu_err(&format!("kernel {name}"), e))?;
            funcs.push((name, f));
        }
        let name = ctx.name().unwrap_or_else(|_| "unknown GPU".into());
        let sms = ctx
            .attribute(cudarc::driver::sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
            .map_err(|e| gpu_err("reading the multiprocessor count", e))? as usize;
        Ok(Gpu {
            ctx,
            stream,
            blas,
            funcs,
            name,
            sms,
        })
    }

    /// The device's name, as the driver gives it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Streaming multiprocessors.
    pub fn multiprocessors(&self) -> usize {
        self.sms
    }

    pub(crate) fn func(&self, name: &str) -> &CudaFunction {
        &self
            .funcs
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("kernel {name} is not in KERNELS"))
            .1
    }

    /// Waits for all queued work; reports any error a kernel raised.
    pub fn sync(&self) -> Result<()> {
        self.stream
            .synchronize()
            .map_err(|e| gpu_err("running on the GPU", e))
    }

    /// A zeroed device buffer of `n` elements.
    pub(crate) fn zeros<T: DeviceRepr + cudarc::driver::ValidAsZeroBits>(
        &self,
        n: usize,
    ) -> Result<CudaSlice<T>> {
        self.stream
            .alloc_zeros::<T>(n.max(1))
            .map_err(|e| gpu_err(&format!("allocating {n} elements on the GPU"), e))
    }

    /// A device copy of `host`.
    pub(crate) fn upload<T: DeviceRepr>(&self, host: &[T]) -> Result<CudaSlice<T>> {
        if host.is_empty() {
            return Err(Error::Device("uploading an empty buffer".into()));
        }
        self.stream
            .clone_htod(host)
            .map_err(|e| gpu_err("copying to the GPU", e))
    }

    /// Overwrites `dst` with `host`.
    pub(crate) fn write<T: DeviceRepr>(&self, host: &[T], dst: &mut CudaSlice<T>) -> Result<()> {
        self.stream
            .memcpy_htod(host, dst)
            .map_err(|e| gpu_err("copying to the GPU", e))
    }

    /// Copies `src` back (waits for the stream).
    pub(crate) fn read<T: DeviceRepr + Default + Clone>(
        &self,
        src: &CudaSlice<T>,
        out: &mut [T],
    ) -> Result<()> {
        self.stream
            .memcpy_dtoh(&src.slice(..out.len()), out)
            .map_err(|e| gpu_err("copying from the GPU", e))?;
        self.sync()
    }

    /// Sets a buffer to zero.
    pub(crate) fn clear<T: DeviceRepr + cudarc::driver::ValidAsZeroBits>(
        &self,
        buf: &mut CudaSlice<T>,
    ) -> Result<()> {
        self.stream
            .memset_zeros(buf)
            .map_err(|e| gpu_err("clearing a GPU buffer", e))
    }

    /// Zeroes `n` f32s from device address `at` (within a live buffer).
    pub(crate) fn stream_memset(&self, at: u64, n: usize) -> Result<()> {
        // SAFETY: callers pass an address and length inside one of their buffers.
        unsafe { cudarc::driver::result::memset_d8_async(at, 0, 4 * n, self.stream.cu_stream()) }
            .map_err(|e| gpu_err("clearing a GPU buffer", e))
    }

    /// The device address of a buffer, element `at` onwards.
    pub(crate) fn addr<T>(&self, buf: &CudaSlice<T>, at: usize) -> u64 {
        let (p, _guard) = buf.device_ptr(&self.stream);
        p + (at * std::mem::size_of::<T>()) as u64
    }

    /// Launches kernel `name` over `n` items with its arguments.
    pub(crate) fn launch(&self, name: &str, n: usize, args: &[Arg]) -> Result<()> {
        let threads = 256u32;
        let blocks = n.div_ceil(threads as usize).clamp(1, self.sms * 32) as u32;
        self.launch_with(
            name,
            LaunchConfig {
                grid_dim: (blocks, 1, 1),
                block_dim: (threads, 1, 1),
                shared_mem_bytes: 0,
            },
            args,
            false,
        )
    }

    pub(crate) fn launch_with(
        &self,
        name: &str,
        cfg: LaunchConfig,
        args: &[Arg],
        cooperative: bool,
    ) -> Result<()> {
        let f = self.func(name);
        let mut b = self.stream.launch_builder(f);
        for a in args {
            match a {
                Arg::U64(v) => b.arg(v),
                Arg::I32(v) => b.arg(v),
                Arg::I64(v) => b.arg(v),
                Arg::F32(v) => b.arg(v),
            };
        }
        // SAFETY: every kernel's arguments are listed in its order and type
        // by its one caller in this module; addresses point into live
        // buffers of the sizes the kernel is told.
        let r = unsafe {
            if cooperative {
                b.launch_cooperative(cfg).map(|_| ())
            } else {
                b.launch(cfg).map(|_| ())
            }
        };
        r.map_err(|e| gpu_err(&format!("launching {name}"), e))
    }

    /// The GPU's GEMM door, with the CPU door's meaning over row-major
    /// device buffers: `c[m,n] = β·c + α·op(a)[m,k]·op(b)[k,n]`, `a` stored
    /// `[m,k]` (or `[k,m]` when `trans_a`), `b` `[k,n]` (or `[n,k]`).
    /// cuBLAS is column-major, so it computes cᵀ = op(b)ᵀ·op(a)ᵀ.
    pub(crate) fn gemm(
        &self,
        m: usize,
        n: usize,
        k: usize,
        alpha: f32,
        a: u64,
        trans_a: bool,
        b: u64,
        trans_b: bool,
        beta: f32,
        c: u64,
    ) -> Result<()> {
        use cublas_sys::cublasOperation_t::{CUBLAS_OP_N, CUBLAS_OP_T};
        if m == 0 || n == 0 {
            return Ok(());
        }
        let op = |t: bool| if t { CUBLAS_OP_T } else { CUBLAS_OP_N };
        let lda = if trans_b { k } else { n };
        let ldb = if trans_a { m } else { k };
        // SAFETY: the caller passes buffers of at least m·k, k·n and m·n elements.
        unsafe {
            cudarc::cublas::result::sgemm(
                *self.blas.handle(),
                op(trans_b),
                op(trans_a),
                n as i32,
                m as i32,
                k as i32,
                &alpha,
                b as *const f32,
                lda as i32,
                a as *const f32,
                ldb as i32,
                &beta,
                c as *mut f32,
                n as i32,
            )
        }
        .map_err(|e| gpu_err("cuBLAS sgemm", e))
    }
}

/// A kernel argument.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Arg {
    U64(u64),
    I32(i32),
    I64(i64),
    F32(f32),
}

/// Compiles `kernels.cu` with NVRTC for a virtual architecture such as
/// `compute_90` (NVRTC's default when `None`); needs the library, no GPU.
pub fn compile_kernels(arch: Option<&'static str>) -> Result<cudarc::nvrtc::Ptx> {
    // SAFETY: only tries to dlopen the library.
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        return Err(Error::Device("NVRTC (libnvrtc.so.13) was not found".into()));
    }
    cudarc::nvrtc::compile_ptx_with_opts(
        SOURCE,
        cudarc::nvrtc::CompileOptions {
            name: Some("aekit_kernels.cu".into()),
            arch,
            ..Default::default()
        },
    )
    .map_err(|e| gpu_err("compiling the kernels with NVRTC", e))
}

/// Which GPU a `--device cuda[:N]` names, opened; a clear error without one.
pub fn open(ordinal: usize) -> Result<Gpu> {
    Gpu::open(ordinal)
}

/// The counter-based stream's code of a corruption: (kind, level).
pub(crate) fn corruption_code(c: crate::layers::Corruption) -> Result<(i32, f32)> {
    use crate::layers::Corruption;
    Ok(match c {
        Corruption::None => (0, 0.0),
        Corruption::Mask(p) => (1, p),
        Corruption::Gauss(s) => (2, s),
        Corruption::SaltPepper(p) => (3, p),
        Corruption::Block(_) | Corruption::Blocks(..) => {
            return Err(Error::config(
                "noise",
                "block noise trains on the CPU only (the GPU corrupts mask, gauss and saltpepper)",
            ))
        }
    })
}

/// The kernels' code of an activation.
pub(crate) fn activation_code(a: crate::layers::activation::Activation) -> i32 {
    use crate::layers::activation::Activation;
    match a {
        Activation::Sigmoid => 0,
        Activation::Relu => 1,
        Activation::Tanh => 2,
        Activation::Identity => 3,
        Activation::Elu => 4,
    }
}
