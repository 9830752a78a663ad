//! Line charts as PNG (plotters into a pixel buffer, encoded with `image`).
//! Text uses DejaVu Sans, embedded (Bitstream Vera licence, in `assets/`).

use crate::error::{Error, Result};
use plotters::prelude::*;
use std::path::Path;

static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
static REGISTER: std::sync::Once = std::sync::Once::new();

fn register_font() {
    REGISTER.call_once(|| {
        // The embedded font is valid; a failure here would be a build error in spirit.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// One labelled line.
#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// Draws `series` as lines with markers and a legend; returns PNG bytes.
pub fn line_chart(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> Result<Vec<u8>> {
    register_font();
    let (w, h) = (900u32, 600u32);
    let mut buf = vec![255u8; (w * h * 3) as usize];
    let pts = || series.iter().flat_map(|s| s.points.iter().copied());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for (x, y) in pts().filter(|(x, y)| x.is_finite() && y.is_finite()) {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if x0 > x1 {
        return Err(Error::config("chart", "no finite points to draw"));
    }
    let pad = |a: f64, b: f64| {
        if b > a {
            (b - a) * 0.05
        } else {
            a.abs().max(1.0) * 0.05
        }
    };
    let (px, py) = (pad(x0, x1), pad(y0, y1));
    let draw = |buf: &mut [u8]| -> std::result::Result<(), Box<dyn std::error::Error>> {
        let root = BitMapBackend::with_buffer(buf, (w, h)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(
                (x0 - px)..(x1 + px),
                (y0 - py).min(if y0 >= 0.0 { 0.0 } else { y0 - py })..(y1 + py),
            )?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .label_style(("sans-serif", 14))
            .draw()?;
        for (k, s) in series.iter().enumerate() {
            let color = Palette99::pick(k).to_rgba();
            chart
                .draw_series(LineSeries::new(s.points.iter().copied(), color.stroke_width(2)))?
                .label(s.label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
            chart.draw_series(s.points.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()?;
        root.present()?;
        Ok(())
    };
    draw(&mut buf).map_err(|e| Error::config("chart", format!("drawing failed: {e}")))?;
    let img = image::RgbImage::from_raw(w, h, buf).expect("buffer is w·h·3");
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("PNG encoding to memory");
    Ok(out.into_inner())
}

/// [`line_chart`] written to `path` atomically.
pub fn save_line_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> Result<()> {
    let png = line_chart(title, x_label, y_label, series)?;
    crate::io::atomic_write(path, &png)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_a_png_with_text() {
        let s = [
            Series {
                label: "a".into(),
                points: vec![(1.0, 2.0), (2.0, 3.0)],
            },
            Series {
                label: "b".into(),
                points: vec![(1.0, 1.0), (2.0, 0.5)],
            },
        ];
        let png = line_chart("title", "x", "y", &s).unwrap();
        let img = image::load_from_memory(&png).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (900, 600));
        let dark = img.pixels().filter(|p| p.0.iter().all(|&c| c < 80)).count();
        assert!(dark > 500, "axes and text are drawn ({dark} dark pixels)");
        assert!(line_chart("t", "x", "y", &[]).is_err());
    }
}
