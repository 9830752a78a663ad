//! Convolutional autoencoders (CAEs) defined as a list of layers, in TOML or
//! by a preset name, on one flat parameter vector, trained with Adam.
//!
//! A spec has an `input` shape `[c, h, w]`, an `encoder` and a `decoder`, each
//! a list of layers (`conv`, `conv_transpose`, `maxpool`, `unpool`,
//! `upsample`, `relu`, `sigmoid`, `tanh`, `identity`). The encoder's output is
//! the code (the features a classifier uses); the decoder must map it back to
//! the input shape. An `unpool` layer uses the indices of the encoder's
//! max-pooling in mirror order (the last pool for the first unpool).
//!
//! Loss per image: squared ½·Σ(x − z)², or cross-entropy computed from the
//! logits of a final sigmoid (the stable form of `layers::loss`). The batch
//! gradient is the mean over its images, plus λ·W for every weight when
//! weight decay is on (biases free). Parameters follow PyTorch's default
//! initialisation: U(−1/√fan_in, 1/√fan_in) for weights and biases, with
//! fan_in = c_in·k·k for a conv and c_out·k·k for a transposed conv.
//!
//! Data parallelism: a batch is cut into one contiguous chunk per worker; each
//! worker runs forward and backward on its chunk with its own workspace and
//! gradient, and the gradients are summed. Corruption is drawn for the whole
//! batch first, so the result does not depend on the number of workers
//! beyond summation order.
//!
//! The files: `spec.rs` (the architecture), `network.rs` (resolved layers,
//! workspace, forward and backward), `model.rs` (the estimator and its
//! fine-tuning), `settings.rs`, `trainer.rs` (objective, trainer, `fit`).

#[cfg(feature = "cuda")]
pub mod gpu;
mod model;
mod network;
mod settings;
mod spec;
mod trainer;

pub use model::{ConvAutoencoder, FinetuneReport};
pub use network::{Network, Workspace};
pub use settings::CaeTrainConfig;
pub use spec::{CaeSpec, LayerSpec, PRESETS};
pub use trainer::{CaeBatch, CaeObjective, Trainer};

#[cfg(test)]
mod tests {
    use super::network::*;
    use super::spec::*;
    use super::*;
    use crate::data::Dataset;
    use crate::layers::Loss;
    use crate::models::classifier::{error_percent, ClassifierConfig, FeatureClassifier};
    use crate::train::TrainConfig;
    use std::collections::HashMap;

    use crate::layers::gradcheck::max_rel_error;

    /// The batch loss in f64 through the same forward pass.
    fn loss_f64(net: &Network, p: &[f64], x: &[f64], b: usize, loss: Loss) -> f64 {
        let mut ws = Workspace::<f64>::new(net, b);
        ws.input_mut(net.input_len(), b).copy_from_slice(x);
        forward(net, p, &mut ws, b, net.nodes.len());
        loss_backward(net, p, &mut ws, x, b, loss, false)
    }

    fn tiny_specs() -> Vec<CaeSpec> {
        use LayerSpec::*;
        let enc = vec![
            Conv {
                out: 2,
                kernel: 3,
                stride: 1,
                pad: 1,
            },
            Tanh,
            Maxpool { size: 2 },
        ];
        let out = |c| Conv {
            out: c,
            kernel: 3,
            stride: 1,
            pad: 1,
        };
        vec![
            CaeSpec {
                input: [1, 6, 6],
                encoder: enc.clone(),
                decoder: vec![
                    ConvTranspose {
                        out: 1,
                        kernel: 3,
                        stride: 2,
                        pad: 1,
                        output_padding: 1,
                    },
                    Sigmoid,
                ],
            },
            CaeSpec {
                input: [1, 6, 6],
                encoder: enc.clone(),
                decoder: vec![Unpool { size: 2 }, out(1), Sigmoid],
            },
            CaeSpec {
                input: [2, 4, 4],
                encoder: enc,
                decoder: vec![Upsample { scale: 2 }, out(2), Sigmoid],
            },
        ]
    }

    #[test]
    fn model_gradient_matches_finite_differences() {
        // Over the flat parameter vector, in f64, for each decoder kind and
        // both losses (the tanh encoder keeps the check away from ReLU's kink).
        for (si, spec) in tiny_specs().iter().enumerate() {
            for loss in [Loss::Squared, Loss::CrossEntropy] {
                let m = ConvAutoencoder::new(spec, loss, 3).unwrap();
                let b = 3;
                let n = m.net.input_len();
                let x: Vec<f64> = (0..b * n).map(|i| ((i * 7 % 11) as f64) / 10.0).collect();
                let p: Vec<f64> = m.params.iter().map(|&v| v as f64).collect();
                let mut ws = Workspace::<f64>::new(&m.net, b);
                ws.input_mut(n, b).copy_from_slice(&x);
                forward(&m.net, &p, &mut ws, b, m.net.nodes.len());
                loss_backward(&m.net, &p, &mut ws, &x, b, loss, true);
                let err = max_rel_error(|q| loss_f64(&m.net, q, &x, b, loss), &p, &ws.grad);
                assert!(err < 1e-6, "spec {si} {loss}: relative error {err}");
            }
        }
    }

    #[test]
    fn presets_resolve_with_the_papers_shapes() {
        let m = Network::new(&CaeSpec::preset("cae-mnist").unwrap()).unwrap();
        assert_eq!(m.code_shape(), [32, 7, 7]);
        // 16·9+16 + 32·16·9+32 + 32·16·9+16 + 16·9+1
        assert_eq!(m.n_params(), 160 + 4640 + 4624 + 145);
        for p in PRESETS {
            Network::new(&CaeSpec::preset(p).unwrap()).unwrap();
        }
        assert_eq!(
            Network::new(&CaeSpec::preset("cae-cifar").unwrap())
                .unwrap()
                .code_shape(),
            [64, 8, 8]
        );
        let wide = Network::new(&CaeSpec::preset("cae-mnist").unwrap().widen(2)).unwrap();
        assert_eq!(wide.code_shape(), [64, 7, 7]);
    }

    #[test]
    fn bad_specs_are_refused_with_the_layer_named() {
        let mut s = CaeSpec::preset("cae-mnist").unwrap();
        s.decoder.pop();
        s.decoder.pop();
        let e = Network::new(&s).unwrap_err().to_string();
        assert!(e.contains("arch.decoder") && e.contains("[16, 14, 14]"), "{e}");
        let e = ConvAutoencoder::new(&s, Loss::CrossEntropy, 1);
        assert!(e.is_err());
        let text = r#"
            input = [1, 8, 8]
            [[encoder]]
            type = "conv"
            out = 4
            kernel = 9
            [[decoder]]
            type = "upsample"
            scale = 2
        "#;
        let spec: CaeSpec = toml::from_str(text).unwrap();
        let e = Network::new(&spec).unwrap_err().to_string();
        assert!(e.contains("arch.encoder[0]") && e.contains("does not fit"), "{e}");
        assert!(toml::from_str::<CaeSpec>("input = [1, 8, 8]\nencoder = [{ type = \"conv\", out = 1, kernel = 3, strid = 2 }]\ndecoder = []").is_err());
    }

    #[test]
    fn training_lowers_the_loss_and_threads_agree() {
        let data = crate::data::builtin::builtin_mnist()
            .unwrap()
            .select(&(0..300).collect::<Vec<_>>());
        let spec = CaeSpec::preset("cae-mnist").unwrap();
        let cfg = CaeTrainConfig {
            train: TrainConfig {
                epochs: 2,
                batch: 50,
                lr: 3e-3,
                ..CaeTrainConfig::default().train
            },
            ..CaeTrainConfig::default()
        };
        let m0 = ConvAutoencoder::new(&spec, Loss::Squared, 1).unwrap();
        let before = m0.score(&data, 1).unwrap();
        let mut runs = Vec::new();
        for threads in [1, 2] {
            let mut m = m0.clone();
            let mut cfg = cfg.clone();
            cfg.train.threads = threads;
            let empty = data.select(&[]);
            let r = m
                .fit(&data, &empty, &cfg, &mut crate::train::Silent, Default::default())
                .unwrap();
            assert_eq!(r.updates, 12);
            runs.push(m);
        }
        let after = runs[0].score(&data, 1).unwrap();
        assert!(after < 0.7 * before, "loss {before} → {after}");
        let diff = runs[0]
            .params
            .iter()
            .zip(&runs[1].params)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(diff < 1e-4, "1 and 2 workers differ by {diff}");
        let codes = runs[0].transform(&data, 2).unwrap();
        assert_eq!(codes.len(), 300 * 32 * 49);
    }

    #[test]
    fn a_standardised_linear_cae_works_in_the_data_units_and_keeps_its_scaling() {
        // Digits moved to the range −50..150: the model standardises its
        // inputs, and its reconstructions are in the data's units.
        let mut data = crate::data::builtin::builtin_mnist()
            .unwrap()
            .select(&(0..200).collect::<Vec<_>>());
        data.x.iter_mut().for_each(|v| *v = 200.0 * *v - 50.0);
        let spec = CaeSpec::preset("cae-mnist").unwrap().linear_output();
        let cfg = CaeTrainConfig {
            train: TrainConfig {
                epochs: 3,
                batch: 50,
                lr: 3e-3,
                ..CaeTrainConfig::default().train
            },
            linear_output: true,
            standardize: true,
            ..CaeTrainConfig::default()
        };
        let mut m = ConvAutoencoder::new(&spec, Loss::Squared, 1).unwrap();
        let empty = data.select(&[]);
        m.fit(&data, &empty, &cfg, &mut crate::train::Silent, Default::default())
            .unwrap();
        let s = m.scaler.clone().expect("fit sets the scaler");
        assert_eq!(s.dim(), 784);
        let rec = m.reconstruct(&data, 1).unwrap();
        let mse = |a: &[f32], b: &[f32]| {
            a.iter()
                .zip(b)
                .map(|(p, q)| ((p - q) as f64).powi(2))
                .sum::<f64>()
        };
        // Against each pixel's mean image (the best constant guess).
        let mean_image: Vec<f32> = (0..data.n).flat_map(|_| s.mean.iter().copied()).collect();
        let (err, base) = (mse(&rec, &data.x), mse(&mean_image, &data.x));
        assert!(
            err < 0.8 * base,
            "squared error {err} against the mean image's {base}"
        );
        // The file keeps the scaling; without it the model is refused.
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("m.safetensors");
        m.save(&p, Default::default()).unwrap();
        let back = ConvAutoencoder::load(&p).unwrap();
        assert_eq!(back.scaler, m.scaler);
        assert_eq!(back.reconstruct(&data, 1).unwrap(), rec);
        let mut f = crate::io::safetensors::load(&p).unwrap();
        let kept: Vec<(String, Vec<usize>, Vec<f32>)> = f
            .names()
            .into_iter()
            .filter(|n| !n.starts_with("input."))
            .map(|n| {
                let shape = f.shape_of(&n).unwrap();
                let v = f.take(&n, &shape).unwrap();
                (n, shape, v)
            })
            .collect();
        let tensors: Vec<_> = kept
            .iter()
            .map(|(n, shape, v)| crate::io::safetensors::NamedTensor {
                name: n,
                shape: shape.clone(),
                data: v,
            })
            .collect();
        crate::io::safetensors::save(&p, &tensors, f.metadata.clone()).unwrap();
        let e = ConvAutoencoder::load(&p).unwrap_err().to_string();
        assert!(e.contains("m.safetensors") && e.contains("input.mean"), "{e}");
        // A sigmoid output cannot be standardised.
        let bad = CaeTrainConfig {
            linear_output: false,
            ..cfg
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("model.standardize"));
    }

    #[test]
    fn finetuning_moves_only_the_encoder_and_lowers_the_validation_error() {
        let all = crate::data::builtin::builtin_mnist().unwrap();
        let train = all.select(&(0..500).collect::<Vec<_>>());
        let val = all.select(&(500..700).collect::<Vec<_>>());
        let mut m = ConvAutoencoder::new(&CaeSpec::preset("cae-mnist").unwrap(), Loss::Squared, 2).unwrap();
        let mut cls = ClassifierConfig::default();
        cls.train.epochs = 3;
        let codes = |m: &ConvAutoencoder, d: &Dataset| m.transform(d, 1).unwrap();
        let (ytr, yva) = (train.labels.clone().unwrap(), val.labels.clone().unwrap());
        let cl = m.net.code_len();
        let mut clf =
            FeatureClassifier::fit(&codes(&m, &train), &ytr, &codes(&m, &val), &yva, cl, 10, &cls).unwrap();
        let before = error_percent(&clf.predict(&codes(&m, &val)), &yva);
        let p0 = m.params.clone();
        let r = m
            .finetune_encoder(&mut clf, &train, &val, &cls, &mut crate::train::Silent)
            .unwrap();
        let after = error_percent(&clf.predict(&codes(&m, &val)), &yva);
        assert_eq!(after, r.valid_error);
        assert!(after < before, "validation error {before}% → {after}%");
        let enc_end = m.net.nodes[m.net.n_enc - 1].b.end;
        assert_ne!(m.params[..enc_end], p0[..enc_end]);
        assert_eq!(m.params[enc_end..], p0[enc_end..], "the decoder is left alone");
    }

    #[test]
    fn save_and_load_round_trip() {
        let m = ConvAutoencoder::new(
            &CaeSpec::preset("cae-mnist-unpool").unwrap(),
            Loss::CrossEntropy,
            5,
        )
        .unwrap();
        let dir = tempfile::Builder::new().prefix("aekit-cae-").tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        m.save(&path, HashMap::new()).unwrap();
        let back = ConvAutoencoder::load(&path).unwrap();
        assert_eq!(back.params, m.params);
        assert_eq!(back.net.spec, m.net.spec);
        assert_eq!(back.loss, Loss::CrossEntropy);
    }
}
