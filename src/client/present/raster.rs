//! kumo's own CPU rasterizer of egui's meshes: the overlay, the state screen and the PIN
//! prompt on the software presenter.
//!
//! egui has no CPU renderer of its own, and the two published ones (`egui_software_backend`
//! 0.0.3, `dream-soft-render` 1.0) are built against egui 0.34 while kumo uses 0.37; their meshes
//! are the same shape, but a second egui in the binary would not share kumo's context. What kumo
//! draws is small and simple (text, flat panels, a few lines): triangles with a colour per vertex
//! and one texture (the font atlas), blended premultiplied, as egui-wgpu does into a target
//! without sRGB encoding (colour × texel in gamma space, `One, OneMinusSrcAlpha`).
//!
//! The layer keeps what it drew and redraws only what changed: each mesh is compared with the
//! last frame's, and only the rectangle covering the triangles that moved is cleared and drawn
//! again (the overlay's frame-time graph moves every frame, its figures once a second; the
//! rest of its panel stays as it was).

use egui::epaint::{ClippedPrimitive, ImageDelta, Primitive, Vertex};
use egui::{TextureId, TexturesDelta};
use std::collections::HashMap;

/// The largest texture the layer accepts from egui (its font atlas is far smaller).
const MAX_TEXTURE_SIDE: usize = 8192;
/// The largest layer (a 4K window).
const MAX_LAYER_PIXELS: usize = 4096 * 2304;

/// A texture egui asked for: premultiplied RGBA, row by row.
struct Texture {
    width: usize,
    height: usize,
    texels: Vec<[u8; 4]>,
}

/// A rectangle of pixels, `x0..x1` × `y0..y1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub x0: usize,
    pub y0: usize,
    pub x1: usize,
    pub y1: usize,
}

impl Span {
    fn is_empty(self) -> bool {
        self.x0 >= self.x1 || self.y0 >= self.y1
    }

    fn intersect(self, other: Self) -> Self {
        Self {
            x0: self.x0.max(other.x0),
            y0: self.y0.max(other.y0),
            x1: self.x1.min(other.x1),
            y1: self.y1.min(other.y1),
        }
    }

    fn union(self, other: Self) -> Self {
        if self.is_empty() {
            return other;
        }
        if other.is_empty() {
            return self;
        }
        Self {
            x0: self.x0.min(other.x0),
            y0: self.y0.min(other.y0),
            x1: self.x1.max(other.x1),
            y1: self.y1.max(other.y1),
        }
    }
}

/// egui's output drawn into premultiplied `0xAARRGGBB` pixels, ready to be laid over the video.
#[derive(Default)]
pub struct Layer {
    width: usize,
    height: usize,
    pixels: Vec<u32>,
    /// Where the last paint drew (all else is transparent).
    drawn: Span,
    textures: HashMap<TextureId, Texture>,
    /// What the last paint drew (compared with the next frame's to find what changed), and at
    /// what scale; `None` after a texture changed (everything is drawn again).
    last: Option<(Vec<ClippedPrimitive>, f32)>,
}

impl Layer {
    /// Applies egui's new and changed textures (before painting the frame that uses them).
    pub fn set_textures(&mut self, delta: &TexturesDelta) {
        for (id, deltas) in &delta.set {
            for d in deltas {
                self.set_texture(*id, d);
            }
            // A changed texture changes what the same meshes look like.
            self.last = None;
        }
    }

    /// Forgets the textures egui freed (after painting).
    pub fn free_textures(&mut self, delta: &TexturesDelta) {
        for id in &delta.free {
            self.textures.remove(id);
        }
    }

    fn set_texture(&mut self, id: TextureId, delta: &ImageDelta) {
        let egui::ImageData::Color(image) = &delta.image;
        let [w, h] = image.size;
        if w > MAX_TEXTURE_SIDE || h > MAX_TEXTURE_SIDE || image.pixels.len() < w * h {
            tracing::warn!("the overlay asked for a {w}x{h} texture; it is not drawn");
            return;
        }
        let texels = image.pixels.iter().map(egui::Color32::to_array);
        match delta.pos {
            None => {
                self.textures.insert(id, Texture { width: w, height: h, texels: texels.collect() });
            }
            Some([x, y]) => {
                let Some(texture) = self.textures.get_mut(&id) else { return };
                if x + w > texture.width || y + h > texture.height {
                    return;
                }
                let texels: Vec<[u8; 4]> = texels.collect();
                for (row, line) in texels.chunks_exact(w).enumerate() {
                    let start = (y + row) * texture.width + x;
                    texture.texels[start..start + w].copy_from_slice(line);
                }
            }
        }
    }

    /// Draws `jobs` into a layer of `size` pixels, redrawing only where they differ from the
    /// last frame's. Returns the rectangle that was drawn again (empty when nothing changed).
    pub fn paint(&mut self, size: (u32, u32), jobs: Vec<ClippedPrimitive>, pixels_per_point: f32) -> Span {
        let (width, height) = (size.0 as usize, size.1 as usize);
        if width * height > MAX_LAYER_PIXELS {
            return Span::default();
        }
        let whole = Span { x0: 0, y0: 0, x1: width, y1: height };
        let damage = if (width, height) == (self.width, self.height) {
            match &self.last {
                Some((last, ppp)) if *ppp == pixels_per_point => damage(last, &jobs, pixels_per_point, whole),
                _ => whole,
            }
        } else {
            self.width = width;
            self.height = height;
            self.pixels.clear();
            self.pixels.resize(width * height, 0);
            self.drawn = Span::default();
            whole
        };
        if !damage.is_empty() {
            self.clear(damage);
            let mut drawn = Span::default();
            for job in &jobs {
                let Primitive::Mesh(mesh) = &job.primitive else { continue };
                let Some(texture) = self.textures.get(&mesh.texture_id) else { continue };
                let clip = clip_span(job, pixels_per_point, whole).intersect(damage);
                if clip.is_empty() {
                    continue;
                }
                for tri in mesh.indices.chunks_exact(3) {
                    let vertex = |i: u32| mesh.vertices.get(i as usize);
                    let (Some(a), Some(b), Some(c)) = (vertex(tri[0]), vertex(tri[1]), vertex(tri[2])) else {
                        continue;
                    };
                    let span = triangle(&mut self.pixels, width, texture, clip, pixels_per_point, [a, b, c]);
                    drawn = drawn.union(span);
                }
            }
            // What was drawn outside the damage is unchanged; keep its bounds (a whole redraw
            // starts them afresh: a state screen's bounds do not outlive it).
            self.drawn = if damage == whole { drawn } else { self.drawn.union(drawn) };
        }
        self.last = Some((jobs, pixels_per_point));
        damage
    }

    fn clear(&mut self, span: Span) {
        if span.is_empty() {
            return;
        }
        for y in span.y0..span.y1.min(self.height) {
            let row = y * self.width;
            self.pixels[row + span.x0..row + span.x1.min(self.width)].fill(0);
        }
    }

    /// Lays the layer over `target` (`0x00RRGGBB` pixels, `width` to a row, the layer's size).
    pub fn composite(&self, target: &mut [u32], width: usize) {
        if width != self.width || target.len() < self.width * self.height {
            return;
        }
        let span = self.drawn;
        for y in span.y0..span.y1 {
            let row = y * width;
            let src = &self.pixels[row + span.x0..row + span.x1];
            let dst = &mut target[row + span.x0..row + span.x1];
            // The frame's fourth byte stays zero (softbuffer's `0RGB`).
            for (d, &s) in dst.iter_mut().zip(src) {
                *d = over(s, *d) & 0x00ff_ffff;
            }
        }
    }

    /// The premultiplied pixel at (x, y), for tests.
    pub fn pixel(&self, x: usize, y: usize) -> u32 {
        self.pixels.get(y * self.width + x).copied().unwrap_or(0)
    }
}

/// A clipped primitive's clip rectangle in pixels, rounded as egui-wgpu rounds its scissors.
fn clip_span(job: &ClippedPrimitive, ppp: f32, whole: Span) -> Span {
    let to_px = |v: f32, max: usize| ((v * ppp).round().max(0.0) as usize).min(max);
    let r = job.clip_rect;
    Span {
        x0: to_px(r.min.x, whole.x1),
        y0: to_px(r.min.y, whole.y1),
        x1: to_px(r.max.x, whole.x1),
        y1: to_px(r.max.y, whole.y1),
    }
}

/// The pixels a triangle may cover (its vertices' bounds, rounded out).
fn triangle_bounds(vertices: [&Vertex; 3], ppp: f32) -> Span {
    let xs = vertices.map(|v| v.pos.x * ppp);
    let ys = vertices.map(|v| v.pos.y * ppp);
    let lo = |v: [f32; 3]| v[0].min(v[1]).min(v[2]).floor().max(0.0) as usize;
    let hi = |v: [f32; 3]| v[0].max(v[1]).max(v[2]).ceil().max(0.0) as usize;
    Span { x0: lo(xs), y0: lo(ys), x1: hi(xs), y1: hi(ys) }
}

/// Where `new` draws differently from `old`: for each mesh, the vertices between the longest
/// common prefix and suffix changed, and every triangle using one of them (in either frame)
/// is damaged. Different clips, textures or numbers of meshes damage the whole layer.
fn damage(old: &[ClippedPrimitive], new: &[ClippedPrimitive], ppp: f32, whole: Span) -> Span {
    if old.len() != new.len() {
        return whole;
    }
    let mut damage = Span::default();
    for (o, n) in old.iter().zip(new) {
        let (Primitive::Mesh(om), Primitive::Mesh(nm)) = (&o.primitive, &n.primitive) else { return whole };
        if o.clip_rect != n.clip_rect || om.texture_id != nm.texture_id {
            return whole;
        }
        if om.vertices == nm.vertices && om.indices == nm.indices {
            continue;
        }
        let (ov, nv) = (&om.vertices, &nm.vertices);
        let prefix = ov.iter().zip(nv).take_while(|(a, b)| a == b).count();
        let room = ov.len().min(nv.len()) - prefix;
        let suffix = ov.iter().rev().zip(nv.iter().rev()).take(room).take_while(|(a, b)| a == b).count();
        let changed_in = |mesh: &egui::Mesh, end: usize| {
            let mut span = Span::default();
            let changed = prefix..end;
            for tri in mesh.indices.chunks_exact(3) {
                let touched = tri.iter().any(|&i| changed.contains(&(i as usize)));
                let vertex = |i: u32| mesh.vertices.get(i as usize);
                if let (true, Some(a), Some(b), Some(c)) = (touched, vertex(tri[0]), vertex(tri[1]), vertex(tri[2])) {
                    span = span.union(triangle_bounds([a, b, c], ppp));
                }
            }
            span
        };
        let mut here = changed_in(om, ov.len() - suffix).union(changed_in(nm, nv.len() - suffix));
        if om.indices != nm.indices && prefix == ov.len().min(nv.len()) && ov.len() == nv.len() {
            // Same vertices, different triangles: redraw the whole mesh.
            here = whole;
        }
        damage = damage.union(here.intersect(clip_span(n, ppp, whole)));
    }
    damage
}

/// `src` (premultiplied) over `dst`, per channel: `src + dst × (255 − α) / 255`, rounded, two
/// channels at a time in 16-bit lanes. Premultiplied channels never exceed α, so no lane
/// overflows into the next.
fn over(src: u32, dst: u32) -> u32 {
    let inv = 255 - (src >> 24);
    let lanes = |x: u32| {
        // round(x / 255) in each 16-bit lane, for x ≤ 255 × 255.
        let t = x + 0x0080_0080;
        ((t + ((t >> 8) & 0x00ff_00ff)) >> 8) & 0x00ff_00ff
    };
    let rb = lanes((dst & 0x00ff_00ff) * inv);
    let ag = lanes(((dst >> 8) & 0x00ff_00ff) * inv) << 8;
    src + rb + ag
}

/// A point of a triangle in pixels, with what it carries.
#[derive(Clone, Copy)]
struct Point {
    x: f32,
    y: f32,
    u: f32,
    v: f32,
    color: [f32; 4],
}

/// Whether an edge from `a` to `b` owns the pixels exactly on it (the top-left rule, so that two
/// triangles sharing an edge never both draw a pixel on it), for triangles of positive area.
fn owns_edge(a: Point, b: Point) -> bool {
    let (dx, dy) = (b.x - a.x, b.y - a.y);
    dy < 0.0 || (dy == 0.0 && dx > 0.0)
}

fn edge(a: Point, b: Point, px: f32, py: f32) -> f32 {
    (b.x - a.x) * (py - a.y) - (b.y - a.y) * (px - a.x)
}

/// Rasterizes one triangle into `target` within `clip`; returns the pixels it may have touched.
fn triangle(pixels: &mut [u32], width: usize, texture: &Texture, clip: Span, ppp: f32, vertices: [&Vertex; 3]) -> Span {
    let point = |v: &Vertex| Point {
        x: v.pos.x * ppp,
        y: v.pos.y * ppp,
        u: v.uv.x,
        v: v.uv.y,
        color: v.color.to_array().map(f32::from),
    };
    let [a, mut b, mut c] = vertices.map(point);
    let mut area = edge(a, b, c.x, c.y);
    if area == 0.0 || !area.is_finite() {
        return Span::default();
    }
    if area < 0.0 {
        std::mem::swap(&mut b, &mut c);
        area = -area;
    }
    let floor = |v: f32, lo: usize, hi: usize| (v.floor().max(0.0) as usize).clamp(lo, hi);
    let ceil = |v: f32, lo: usize, hi: usize| (v.ceil().max(0.0) as usize).clamp(lo, hi);
    let span = Span {
        x0: floor(a.x.min(b.x).min(c.x), clip.x0, clip.x1),
        y0: floor(a.y.min(b.y).min(c.y), clip.y0, clip.y1),
        x1: ceil(a.x.max(b.x).max(c.x), clip.x0, clip.x1),
        y1: ceil(a.y.max(b.y).max(c.y), clip.y0, clip.y1),
    };
    if span.is_empty() {
        return span;
    }
    let owns = [owns_edge(b, c), owns_edge(c, a), owns_edge(a, b)];
    let flat_color = a.color == b.color && b.color == c.color;
    let flat_uv = (a.u, a.v) == (b.u, b.v) && (b.u, b.v) == (c.u, c.v);
    let texel = |u: f32, v: f32| {
        let x = ((u * texture.width as f32) as usize).min(texture.width - 1);
        let y = ((v * texture.height as f32) as usize).min(texture.height - 1);
        texture.texels[y * texture.width + x]
    };
    let shade = |color: [f32; 4], t: [u8; 4]| -> u32 {
        let ch = |i: usize| ((color[i] * f32::from(t[i]) / 255.0).round() as u32).min(255);
        // Premultiplied: no channel above alpha (what `over` relies on).
        let a = ch(3);
        (a << 24) | (ch(0).min(a) << 16) | (ch(1).min(a) << 8) | ch(2).min(a)
    };
    let flat = (flat_color && flat_uv).then(|| shade(a.color, texel(a.u, a.v)));
    let inv_area = 1.0 / area;
    // Each edge as w(x) = slope × (x + 0.5) + offset(y), to narrow each row to the pixels the
    // triangle can cover before testing them one by one (thin triangles, as in lines and text
    // edges, cover a small part of their bounds).
    let edges = [(b, c), (c, a), (a, b)];
    for y in span.y0..span.y1 {
        let py = y as f32 + 0.5;
        let row = y * width;
        let (mut lo, mut hi) = (span.x0 as f32, span.x1 as f32);
        for (p, q) in edges {
            let slope = -(q.y - p.y);
            let offset = (q.x - p.x) * (py - p.y) + (q.y - p.y) * p.x;
            if slope > 0.0 {
                lo = lo.max(-offset / slope - 1.5);
            } else if slope < 0.0 {
                hi = hi.min(-offset / slope + 1.5);
            } else if offset < 0.0 {
                hi = lo;
            }
        }
        if hi <= lo {
            continue;
        }
        let from = (lo.max(0.0) as usize).max(span.x0);
        let to = (hi.ceil().max(0.0) as usize).min(span.x1);
        for x in from..to {
            let px = x as f32 + 0.5;
            let w = [edge(b, c, px, py), edge(c, a, px, py), edge(a, b, px, py)];
            if w.iter().zip(owns).any(|(&w, owns)| w < 0.0 || (w == 0.0 && !owns)) {
                continue;
            }
            let src = if let Some(src) = flat {
                src
            } else {
                let [la, lb, lc] = w.map(|w| w * inv_area);
                let color = if flat_color {
                    a.color
                } else {
                    std::array::from_fn(|i| la * a.color[i] + lb * b.color[i] + lc * c.color[i])
                };
                let t = if flat_uv {
                    texel(a.u, a.v)
                } else {
                    texel(la * a.u + lb * b.u + lc * c.u, la * a.v + lb * b.v + lc * c.v)
                };
                shade(color, t)
            };
            if src == 0 {
                continue;
            }
            let d = &mut pixels[row + x];
            *d = over(src, *d);
        }
    }
    span
}

#[cfg(test)]
mod tests {
    use super::*;
    use egui::{Color32, Pos2, Rect, TextureId, epaint::ImageDelta};

    /// A layer with egui's default texture: one white texel (what flat shapes sample).
    fn layer() -> Layer {
        let mut layer = Layer::default();
        let mut delta = TexturesDelta::default();
        let white = egui::ColorImage::new([1, 1], vec![Color32::WHITE]);
        delta.set.insert(TextureId::default(), [ImageDelta::full(white, egui::TextureOptions::NEAREST)].into());
        layer.set_textures(&delta);
        delta.clear();
        layer
    }

    fn rect_job(rect: Rect, color: Color32) -> ClippedPrimitive {
        let mut mesh = egui::Mesh::default();
        mesh.add_colored_rect(rect, color);
        ClippedPrimitive { clip_rect: Rect::EVERYTHING, primitive: Primitive::Mesh(mesh) }
    }

    #[test]
    fn a_translucent_rectangle_is_even_across_its_diagonal() {
        // Two triangles share the diagonal: the fill rule draws each pixel on it once, so a
        // translucent colour does not show a darker seam.
        let mut layer = layer();
        let half = Color32::from_rgba_premultiplied(60, 30, 10, 128);
        let rect = Rect::from_min_max(Pos2::new(2.0, 3.0), Pos2::new(34.0, 35.0));
        layer.paint((40, 40), vec![rect_job(rect, half)], 1.0);
        let want = 0x803c_1e0a; // alpha 128, then 60, 30, 10
        for y in 0..40 {
            for x in 0..40 {
                let inside = (2..34).contains(&x) && (3..35).contains(&y);
                assert_eq!(layer.pixel(x, y), if inside { want } else { 0 }, "pixel ({x}, {y})");
            }
        }
    }

    #[test]
    fn blending_is_premultiplied_over_and_exact_at_the_ends() {
        assert_eq!(over(0, 0x00ab_cdef), 0x00ab_cdef, "transparent leaves the frame as it was");
        assert_eq!(over(0xff11_2233, 0x00ab_cdef), 0xff11_2233, "opaque replaces it");
        // Half-transparent black over white: 255 × 127 / 255 = 127 in each channel.
        assert_eq!(over(0x8000_0000, 0x00ff_ffff) & 0x00ff_ffff, 0x007f_7f7f);
        // Never a carry into the next channel, whatever the frame holds.
        for a in [1u32, 64, 200, 254] {
            let src = a << 24 | a << 16 | a << 8 | a;
            let out = over(src, 0xffff_ffff);
            assert_eq!(out, 0xffff_ffff, "alpha {a}: {out:08x}");
        }
    }

    #[test]
    fn only_the_rectangle_that_changed_is_drawn_again() {
        let mut layer = layer();
        let panel = rect_job(Rect::from_min_max(Pos2::new(0.0, 0.0), Pos2::new(100.0, 100.0)), Color32::DARK_GRAY);
        let dot = |x: f32| rect_job(Rect::from_min_max(Pos2::new(x, 10.0), Pos2::new(x + 4.0, 14.0)), Color32::RED);
        let whole = layer.paint((200, 120), vec![panel.clone(), dot(10.0)], 1.0);
        assert_eq!(whole, Span { x0: 0, y0: 0, x1: 200, y1: 120 }, "the first frame is drawn whole");
        assert!(layer.paint((200, 120), vec![panel.clone(), dot(10.0)], 1.0).is_empty(), "nothing changed");
        let moved = layer.paint((200, 120), vec![panel, dot(20.0)], 1.0);
        assert_eq!(moved, Span { x0: 10, y0: 10, x1: 24, y1: 14 }, "the dot's old and new place");
        assert_eq!(layer.pixel(11, 11) & 0x00ff_ffff, 0x0060_6060, "the panel shows where the dot was");
        assert_eq!(layer.pixel(21, 11), 0xffff_0000, "the dot is at its new place");
    }
}
