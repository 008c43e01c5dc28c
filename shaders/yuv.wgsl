// kumo's video shader: three R8 planes of I420 in, R'G'B' out, converted on the GPU.
//
// The vertex stage draws one triangle that covers the viewport; the presenter sets the
// viewport to the letterboxed video rectangle, so the picture lands aspect-correct in any
// window. The fragment stage samples Y, Cb and Cr (chroma at half resolution, bilinear) and
// applies a 3x4 matrix from the uniform: the colour space's matrix and range folded into one
// affine transform (see src/core/color.rs, which computes it and is the CPU reference).
// Output is gamma-encoded video RGB, written to a non-sRGB view so nothing re-encodes it.

struct Conversion {
    r: vec4<f32>,
    g: vec4<f32>,
    b: vec4<f32>,
};

@group(0) @binding(0) var plane_y: texture_2d<f32>;
@group(0) @binding(1) var plane_u: texture_2d<f32>;
@group(0) @binding(2) var plane_v: texture_2d<f32>;
@group(0) @binding(3) var planes: sampler;
@group(0) @binding(4) var<uniform> conversion: Conversion;

struct VertexOut {
    @builtin(position) position: vec4<f32>,
    @location(0) uv: vec2<f32>,
};

@vertex
fn vs_main(@builtin(vertex_index) index: u32) -> VertexOut {
    // (0,0), (2,0), (0,2): a triangle twice the viewport, clipped to it.
    let x = f32((index << 1u) & 2u);
    let y = f32(index & 2u);
    var out: VertexOut;
    out.position = vec4<f32>(x * 2.0 - 1.0, 1.0 - y * 2.0, 0.0, 1.0);
    out.uv = vec2<f32>(x, y);
    return out;
}

@fragment
fn fs_main(in: VertexOut) -> @location(0) vec4<f32> {
    let yuv = vec4<f32>(
        textureSample(plane_y, planes, in.uv).r,
        textureSample(plane_u, planes, in.uv).r,
        textureSample(plane_v, planes, in.uv).r,
        1.0,
    );
    let rgb = vec3<f32>(dot(conversion.r, yuv), dot(conversion.g, yuv), dot(conversion.b, yuv));
    return vec4<f32>(clamp(rgb, vec3<f32>(0.0), vec3<f32>(1.0)), 1.0);
}
