//! The software presenter's drawing: I420 → BGRX with yuvutils-rs (SIMD), scaled to the
//! letterboxed rectangle with `fast_image_resize` (SIMD, bilinear) when the window is not the
//! stream's size, and egui's layer (`raster`) laid over it. It draws into a frame of
//! `0x00RRGGBB` pixels: the window's softbuffer (X11 shared memory, Wayland shm) or, in tests and
//! the benchmark, a plain buffer. Used only when the machine has no GPU (a CPU rasterizer such as
//! lavapipe is slower at all of this, see docs/benchmarks.md); with a GPU nothing converts colour
//! on the CPU.

use super::raster::Layer;
use crate::client::decode::Picture;
use crate::core::view::color::{ColorSpace, Matrix, Range};
use crate::core::view::layout::{self, Rect};

/// What the letterbox bars are filled with: the GPU path's clear colour (0.02, 0.02, 0.03).
pub const BACKGROUND: u32 = 0x0005_0508;

/// A picture converted to `0x00RRGGBB`.
#[derive(Default)]
struct Bgrx {
    width: usize,
    height: usize,
    pixels: Vec<u32>,
}

/// Everything one frame draws on the CPU: the video letterboxed, then egui's layer.
pub struct CpuCompositor {
    color: ColorSpace,
    /// The newest picture, converted at its own size.
    picture: Option<Bgrx>,
    /// That picture at the size of the rectangle it was last drawn in (when it differs).
    scaled: Option<(Rect, Bgrx)>,
    resizer: fast_image_resize::Resizer,
    pub layer: Layer,
}

impl Default for CpuCompositor {
    fn default() -> Self {
        Self::new()
    }
}

impl CpuCompositor {
    pub fn new() -> Self {
        Self {
            color: ColorSpace::HOST_DEFAULT,
            picture: None,
            scaled: None,
            resizer: fast_image_resize::Resizer::new(),
            layer: Layer::default(),
        }
    }

    /// Sets the colour space pictures are converted from (the next upload uses it).
    pub fn set_color(&mut self, color: ColorSpace) {
        self.color = color;
    }

    /// The size of the newest picture, if one was uploaded.
    pub fn picture_size(&self) -> Option<(u32, u32)> {
        self.picture.as_ref().map(|p| (p.width as u32, p.height as u32))
    }

    /// Converts a picture to RGB. Pictures with planes shorter than their size claims, or an
    /// odd size, are ignored.
    pub fn upload(&mut self, picture: &Picture) {
        let (w, h) = (picture.width, picture.height);
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        if w == 0 || h == 0 || picture.y.len() < w * h || picture.u.len() < cw * ch || picture.v.len() < cw * ch {
            return;
        }
        let mut out = self.picture.take().unwrap_or_default();
        out.width = w;
        out.height = h;
        out.pixels.resize(w * h, 0);
        let image = yuvutils_rs::YuvPlanarImage {
            y_plane: &picture.y[..w * h],
            y_stride: w as u32,
            u_plane: &picture.u[..cw * ch],
            u_stride: cw as u32,
            v_plane: &picture.v[..cw * ch],
            v_stride: cw as u32,
            width: w as u32,
            height: h as u32,
        };
        let range = match self.color.range {
            Range::Limited => yuvutils_rs::YuvRange::Limited,
            Range::Full => yuvutils_rs::YuvRange::Full,
        };
        let matrix = match self.color.matrix {
            Matrix::Bt601 => yuvutils_rs::YuvStandardMatrix::Bt601,
            Matrix::Bt709 => yuvutils_rs::YuvStandardMatrix::Bt709,
        };
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut out.pixels);
        if let Err(err) = yuvutils_rs::yuv420_to_bgra(&image, bytes, (w * 4) as u32, range, matrix) {
            tracing::debug!("a picture could not be converted: {err}");
            return;
        }
        self.picture = Some(out);
        self.scaled = None;
    }

    /// Draws one frame into `frame` (`size` pixels, `0x00RRGGBB`): the picture letterboxed
    /// (when `show_video`), the bars, and egui's `jobs` over everything.
    pub fn render(
        &mut self,
        frame: &mut [u32],
        size: (u32, u32),
        show_video: bool,
        jobs: Vec<egui::ClippedPrimitive>,
        pixels_per_point: f32,
    ) {
        let (width, height) = (size.0 as usize, size.1 as usize);
        if frame.len() < width * height || width == 0 || height == 0 {
            return;
        }
        let frame = &mut frame[..width * height];
        let viewport = match (&self.picture, show_video) {
            (Some(p), true) => layout::fit((p.width as u32, p.height as u32), size),
            _ => Rect::default(),
        };
        self.draw_video(frame, width, viewport);
        // The bars: every row above and below the picture, and both sides beside it.
        let (x0, y0) = (viewport.x as usize, viewport.y as usize);
        let (x1, y1) = (x0 + viewport.width as usize, y0 + viewport.height as usize);
        for (y, row) in frame.chunks_exact_mut(width).enumerate() {
            if viewport.is_empty() || y < y0 || y >= y1 {
                row.fill(BACKGROUND);
            } else {
                row[..x0].fill(BACKGROUND);
                row[x1.min(width)..].fill(BACKGROUND);
            }
        }
        self.layer.paint(size, jobs, pixels_per_point);
        self.layer.composite(frame, width);
    }

    /// `render` with egui's output for this frame as it comes from `ctx.run_ui`: its texture
    /// changes applied (and freed after), its shapes tessellated. The window and the benchmark
    /// draw through this, as the GPU's `Compositor::render` takes the same output.
    pub fn render_ui(
        &mut self,
        frame: &mut [u32],
        size: (u32, u32),
        show_video: bool,
        ctx: &egui::Context,
        mut ui: egui::FullOutput,
    ) {
        self.layer.set_textures(&ui.textures_delta);
        let jobs = ctx.tessellate(std::mem::take(&mut ui.shapes), ui.pixels_per_point);
        self.render(frame, size, show_video, jobs, ui.pixels_per_point);
        self.layer.free_textures(&ui.textures_delta);
        ui.textures_delta.clear();
    }

    /// Takes egui's output for a frame that is not drawn (no buffer this turn): its texture
    /// changes still apply, or the font atlas would miss glyphs from then on.
    pub fn skip_ui(&mut self, mut ui: egui::FullOutput) {
        self.layer.set_textures(&ui.textures_delta);
        self.layer.free_textures(&ui.textures_delta);
        ui.textures_delta.clear();
    }

    /// Copies (or scales) the picture into `viewport` of the frame.
    fn draw_video(&mut self, frame: &mut [u32], width: usize, viewport: Rect) {
        let Some(picture) = &self.picture else { return };
        if viewport.is_empty() {
            return;
        }
        let (vw, vh) = (viewport.width as usize, viewport.height as usize);
        let source = if (vw, vh) == (picture.width, picture.height) {
            picture
        } else {
            if self.scaled.as_ref().is_none_or(|(r, _)| *r != viewport) {
                let mut out = self.scaled.take().map(|(_, b)| b).unwrap_or_default();
                out.width = vw;
                out.height = vh;
                out.pixels.resize(vw * vh, 0);
                if !scale(&mut self.resizer, picture, &mut out) {
                    return;
                }
                self.scaled = Some((viewport, out));
            }
            let Some((_, scaled)) = &self.scaled else { return };
            scaled
        };
        let (x, y) = (viewport.x as usize, viewport.y as usize);
        for (row, line) in source.pixels.chunks_exact(vw).take(vh).enumerate() {
            let start = (y + row) * width + x;
            if let Some(dst) = frame.get_mut(start..start + vw) {
                dst.copy_from_slice(line);
            }
        }
    }
}

/// Scales `from` into `to` (whose size is set), bilinear.
fn scale(resizer: &mut fast_image_resize::Resizer, from: &Bgrx, to: &mut Bgrx) -> bool {
    use fast_image_resize::images::{Image, ImageRef};
    use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions};
    let src_bytes: &[u8] = bytemuck::cast_slice(&from.pixels);
    let Ok(src) = ImageRef::new(from.width as u32, from.height as u32, src_bytes, PixelType::U8x4) else {
        return false;
    };
    let dst_bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut to.pixels);
    let Ok(mut dst) = Image::from_slice_u8(to.width as u32, to.height as u32, dst_bytes, PixelType::U8x4) else {
        return false;
    };
    // The fourth byte is padding, not alpha: no premultiplying.
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear)).use_alpha(false);
    resizer.resize(&src, &mut dst, &options).is_ok()
}

/// `0x00RRGGBB` pixels as tightly packed RGBA (opaque), as the GPU path's readback gives them.
pub fn to_rgba(frame: &[u32]) -> Vec<u8> {
    frame.iter().flat_map(|p| [(p >> 16) as u8, (p >> 8) as u8, *p as u8, 255]).collect()
}

/// Draws `picture` into a frame of `size`, letterboxed, and returns it as RGBA: the software
/// twin of `render_offscreen`, for tests and the benchmark.
pub fn render_offscreen(
    compositor: &mut CpuCompositor,
    picture: &Picture,
    color: ColorSpace,
    size: (u32, u32),
) -> Vec<u8> {
    compositor.set_color(color);
    compositor.upload(picture);
    let mut frame = vec![0u32; size.0 as usize * size.1 as usize];
    compositor.render(&mut frame, size, true, Vec::new(), 1.0);
    to_rgba(&frame)
}
