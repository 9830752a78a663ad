//! The instruction sets the per-example kernel is compiled for: the
//! library's one [`Isa`] (with the `AEKIT_ISA` switch).

pub use crate::tensor::isa::Isa;
