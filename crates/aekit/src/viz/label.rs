//! Tiles with a caption under each: figures such as a PSNR drawn in a small
//! built-in 3×5 pixel font (digits, `.`, `-`, space and the letters of
//! `dB`, `MSE`), so that a picture says what each tile scored.

use super::chw_grid;
use image::{Rgb, RgbImage};

/// The 3×5 glyph of `ch`, one row per byte, the top row first, bit 2 the
/// left column; `None` for a character the font lacks.
fn glyph(ch: char) -> Option<[u8; 5]> {
    Some(match ch {
        '0' => [7, 5, 5, 5, 7],
        '1' => [2, 6, 2, 2, 7],
        '2' => [7, 1, 7, 4, 7],
        '3' => [7, 1, 3, 1, 7],
        '4' => [5, 5, 7, 1, 1],
        '5' => [7, 4, 7, 1, 7],
        '6' => [7, 4, 7, 5, 7],
        '7' => [7, 1, 2, 2, 2],
        '8' => [7, 5, 7, 5, 7],
        '9' => [7, 5, 7, 1, 7],
        '.' => [0, 0, 0, 0, 2],
        '-' => [0, 0, 7, 0, 0],
        ' ' => [0, 0, 0, 0, 0],
        'd' => [1, 1, 7, 5, 7],
        'B' => [6, 5, 6, 5, 6],
        'M' => [5, 7, 7, 5, 5],
        'S' => [7, 4, 7, 1, 7],
        'E' => [7, 4, 6, 4, 7],
        _ => return None,
    })
}

/// Draws `text` with its top-left corner at (x, y), each font pixel a
/// `scale`×`scale` block; characters the font lacks are drawn as spaces,
/// and what falls outside the image is clipped.
pub fn draw_text(img: &mut RgbImage, text: &str, x: u32, y: u32, scale: u32, colour: Rgb<u8>) {
    let s = scale.max(1);
    for (k, ch) in text.chars().enumerate() {
        let g = glyph(ch).unwrap_or([0; 5]);
        let ox = x + k as u32 * 4 * s;
        for (row, bits) in g.iter().enumerate() {
            for col in 0..3u32 {
                if bits >> (2 - col) & 1 == 1 {
                    for dy in 0..s {
                        for dx in 0..s {
                            let (px, py) = (ox + col * s + dx, y + row as u32 * s + dy);
                            if px < img.width() && py < img.height() {
                                img.put_pixel(px, py, colour);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// [`chw_grid`] with a caption strip under every row of tiles: `labels[t]`
/// (may be empty) written in white under tile t.
pub fn labelled_grid(
    images: &[&[f32]],
    labels: &[String],
    channels: usize,
    h: usize,
    w: usize,
    cols: usize,
    zoom: u32,
) -> RgbImage {
    let grid = chw_grid(images, channels, h, w, cols, zoom);
    let cols = cols.max(1).min(images.len().max(1));
    let rows = images.len().div_ceil(cols).max(1);
    let z = zoom.max(1);
    let (tw, th) = (w as u32 * z + 1, h as u32 * z + 1);
    // The text scale that fits the widest label into a tile.
    let widest = labels.iter().map(|l| l.chars().count() as u32).max().unwrap_or(0);
    let scale = (1..=z).rev().find(|s| widest * 4 * s <= tw).unwrap_or(1);
    let strip = 5 * scale + 4;
    let mut img = RgbImage::from_pixel(grid.width(), grid.height() + rows as u32 * strip, Rgb([40; 3]));
    for r in 0..rows as u32 {
        // Row r of tiles, then its strip.
        for y in 0..th {
            let sy = r * th + y;
            if sy >= grid.height() {
                break;
            }
            for x in 0..grid.width() {
                img.put_pixel(x, sy + r * strip, *grid.get_pixel(x, sy));
            }
        }
    }
    for (t, label) in labels.iter().enumerate().take(images.len()) {
        let (c, r) = ((t % cols) as u32, (t / cols) as u32);
        let y = (r + 1) * th + r * strip + 2;
        draw_text(&mut img, label, c * tw + 2, y, scale, Rgb([255; 3]));
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_drawn_where_asked_and_labels_sit_under_their_tiles() {
        let mut img = RgbImage::new(12, 5);
        draw_text(&mut img, "1.", 0, 0, 1, Rgb([255; 3]));
        // '1': the middle column of every row, and the left of row 1 and the
        // whole of row 4; '.' one pixel at (5, 4).
        let lit: Vec<(u32, u32)> = img
            .enumerate_pixels()
            .filter(|(_, _, p)| p.0[0] == 255)
            .map(|(x, y, _)| (x, y))
            .collect();
        assert_eq!(
            lit,
            [
                (1, 0),
                (0, 1),
                (1, 1),
                (1, 2),
                (1, 3),
                (0, 4),
                (1, 4),
                (2, 4),
                (5, 4)
            ]
        );
        let (a, b) = (vec![0.0f32; 16], vec![1.0f32; 16]);
        let g = labelled_grid(&[&a, &b], &["8".into(), String::new()], 1, 4, 4, 2, 2);
        // Two tiles of 9×9 (zoom 2, separators), a strip of 5·2 + 4 under them.
        assert_eq!((g.width(), g.height()), (19, 10 + 14));
        // The second tile is white, the first black, and '8' is lit under
        // the first tile only.
        assert_eq!(g.get_pixel(12, 3).0, [255; 3]);
        assert_eq!(g.get_pixel(3, 3).0, [0; 3]);
        let lit_under =
            |x0: u32, x1: u32| (x0..x1).any(|x| (10..24).any(|y| g.get_pixel(x, y).0 == [255; 3]));
        assert!(lit_under(0, 9) && !lit_under(10, 19));
    }
}
