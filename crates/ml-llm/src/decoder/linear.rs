//! The decoder's matrix products: the tiled kernels where they run
//! (see [`crate::matmul`]), candle's `QMatMul` elsewhere, with the
//! matrices that read the same input multiplied together.

use candle_core::quantized::{QMatMul, QTensor};
use candle_core::{D, Module, Result, Tensor};

use crate::matmul::TiledMatMul;

/// Matrices `[n_i, k]` reading the same input; [`Linears::forward`] gives
/// one output per matrix.
pub(crate) enum Linears {
    /// All of them as one tiled product, outputs side by side.
    Tiled {
        product: TiledMatMul,
        widths: Vec<usize>,
    },
    /// One candle product each.
    Candle(Vec<QMatMul>),
}

impl Linears {
    /// The matrices as one tiled product where the kernels take them all,
    /// else as candle's products.
    pub(crate) fn new(matrices: Vec<QTensor>) -> Result<Self> {
        let borrowed: Vec<&QTensor> = matrices.iter().collect();
        if let Some(product) = TiledMatMul::new(&borrowed)? {
            let widths = matrices
                .iter()
                .map(|matrix| matrix.shape().dims2().map(|(n, _)| n))
                .collect::<Result<_>>()?;
            return Ok(Self::Tiled { product, widths });
        }
        let products = matrices
            .into_iter()
            .map(QMatMul::from_qtensor)
            .collect::<Result<_>>()?;
        Ok(Self::Candle(products))
    }

    /// `x · Wᵢᵀ` for each of the `N` matrices.
    pub(crate) fn forward_n<const N: usize>(&self, x: &Tensor) -> Result<[Tensor; N]> {
        self.forward(x)?.try_into().map_err(|outputs: Vec<Tensor>| {
            candle_core::Error::Msg(format!("{} products, expected {N}", outputs.len()))
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        match self {
            Self::Tiled { product, widths } => {
                let all = product.forward(x)?;
                if widths.len() == 1 {
                    return Ok(vec![all]);
                }
                let mut offset = 0;
                let mut outputs = Vec::with_capacity(widths.len());
                for &width in widths {
                    outputs.push(all.narrow(D::Minus1, offset, width)?);
                    offset += width;
                }
                Ok(outputs)
            }
            Self::Candle(products) => products.iter().map(|p| p.forward(x)).collect(),
        }
    }
}

/// One matrix.
pub(crate) struct Linear(Linears);

impl Linear {
    /// As [`Linears::new`] for one matrix.
    pub(crate) fn new(matrix: QTensor) -> Result<Self> {
        Linears::new(vec![matrix]).map(Self)
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let [output] = self.0.forward_n(x)?;
        Ok(output)
    }
}
