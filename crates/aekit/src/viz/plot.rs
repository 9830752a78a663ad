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

/// A `w`×`h` RGB picture drawn by `draw` into its pixel buffer, as PNG bytes.
fn render_png(
    w: u32,
    h: u32,
    draw: impl FnOnce(&mut [u8]) -> std::result::Result<(), Box<dyn std::error::Error>>,
) -> Result<Vec<u8>> {
    let mut buf = vec![255u8; (w * h * 3) as usize];
    draw(&mut buf).map_err(|e| Error::config("chart", format!("drawing failed: {e}")))?;
    let img = image::RgbImage::from_raw(w, h, buf).expect("buffer is w·h·3");
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("PNG encoding to memory");
    Ok(out.into_inner())
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
    render_png(w, h, draw)
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

/// One panel of a scatter chart: a title and points `(x, y, class)`.
#[derive(Debug, Clone)]
pub struct Panel {
    pub title: String,
    pub points: Vec<(f64, f64, u8)>,
}

/// Ten colours that stay apart (Tableau's palette), one per class.
const CLASS_COLOURS: [(u8, u8, u8); 10] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
];

/// Panels side by side, each a scatter of its points coloured by class
/// (classes past 9 reuse the colours), with a legend of the classes in the
/// first panel; returns PNG bytes.
pub fn scatter_panels(panels: &[Panel]) -> Result<Vec<u8>> {
    register_font();
    if panels.is_empty() {
        return Err(Error::config("chart", "no panels to draw"));
    }
    let (pw, h) = (700u32, 700u32);
    let w = pw * panels.len() as u32;
    let draw = |buf: &mut [u8]| -> std::result::Result<(), Box<dyn std::error::Error>> {
        let root = BitMapBackend::with_buffer(buf, (w, h)).into_drawing_area();
        root.fill(&WHITE)?;
        let areas = root.split_evenly((1, panels.len()));
        for (k, (area, p)) in areas.iter().zip(panels).enumerate() {
            let pts: Vec<&(f64, f64, u8)> = p
                .points
                .iter()
                .filter(|(x, y, _)| x.is_finite() && y.is_finite())
                .collect();
            let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
            for &&(x, y, _) in &pts {
                (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
            }
            if x0 > x1 {
                (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
            }
            let (px, py) = (((x1 - x0) * 0.05).max(1e-6), ((y1 - y0) * 0.05).max(1e-6));
            let mut chart = ChartBuilder::on(area)
                .caption(&p.title, ("sans-serif", 20))
                .margin(12)
                .x_label_area_size(35)
                .y_label_area_size(50)
                .build_cartesian_2d((x0 - px)..(x1 + px), (y0 - py)..(y1 + py))?;
            chart.configure_mesh().label_style(("sans-serif", 12)).draw()?;
            let colour = |c: u8| {
                let (r, g, b) = CLASS_COLOURS[c as usize % 10];
                RGBColor(r, g, b)
            };
            chart.draw_series(
                pts.iter()
                    .map(|&&(x, y, c)| Circle::new((x, y), 2, colour(c).mix(0.7).filled())),
            )?;
            if k == 0 {
                let mut classes: Vec<u8> = pts.iter().map(|p| p.2).collect();
                classes.sort_unstable();
                classes.dedup();
                for c in classes {
                    chart
                        .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
                        .label(c.to_string())
                        .legend(move |(x, y)| Circle::new((x + 6, y), 4, colour(c).filled()));
                }
                chart
                    .configure_series_labels()
                    .background_style(WHITE.mix(0.85))
                    .border_style(BLACK)
                    .label_font(("sans-serif", 13))
                    .draw()?;
            }
        }
        root.present()?;
        Ok(())
    };
    render_png(w, h, draw)
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

    #[test]
    fn scatter_panels_colour_each_class() {
        let p = |t: &str| Panel {
            title: t.into(),
            points: (0..200)
                .map(|i| ((i % 17) as f64, (i % 13) as f64, (i % 10) as u8))
                .collect(),
        };
        let png = scatter_panels(&[p("a"), p("b")]).unwrap();
        let img = image::load_from_memory(&png).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (1400, 700));
        // Every class's colour shows up (blended with white at 0.7).
        for &(r, g, b) in &CLASS_COLOURS {
            let near = |p: &image::Rgb<u8>| {
                let m = |c: u8| (0.7 * c as f64 + 0.3 * 255.0) as i32;
                (p.0[0] as i32 - m(r)).abs() < 12
                    && (p.0[1] as i32 - m(g)).abs() < 12
                    && (p.0[2] as i32 - m(b)).abs() < 12
            };
            assert!(img.pixels().any(near), "colour {r},{g},{b} drawn");
        }
        assert!(scatter_panels(&[]).is_err());
    }
}
