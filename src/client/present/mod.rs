//! The presenters: the wgpu shell (this file: the GPU device, and the video renderer that turns
//! I420 planes into pixels) and the software one (`cpu`, with `raster` for egui's meshes) for
//! machines without a GPU.
//!
//! Owns the device, the three plane textures and the YUV→RGB pipeline (`shaders/yuv.wgsl`).
//! A decoded picture is uploaded as three R8 textures and converted on the GPU; nothing
//! converts colour on the CPU. The renderer draws into any colour target (the window's
//! surface or an offscreen texture in tests), into the letterboxed rectangle `core::view::layout`
//! computes. It runs on the winit thread and never blocks on anything but the GPU.

pub mod cpu;
pub mod raster;

use crate::client::decode::Picture;
use crate::core::view::color::ColorSpace;
use crate::core::view::layout::Rect;
use thiserror::Error;

/// The YUV→RGB shader, compiled into the binary.
pub const SHADER: &str = include_str!("../../../shaders/yuv.wgsl");

#[derive(Debug, Error)]
pub enum GpuError {
    #[error(
        "no usable GPU adapter was found ({0}). kumo draws with Vulkan: install your GPU's Vulkan driver, or Mesa's software one (`sudo apt-get install mesa-vulkan-drivers` on Debian), or run with --headless"
    )]
    NoAdapter(String),
    #[error("the GPU adapter {adapter} refused to open a device: {reason}")]
    Device { adapter: String, reason: String },
    #[error("could not create a drawing surface for the window: {0}")]
    Surface(String),
}

/// An open GPU device.
pub struct Gpu {
    pub instance: wgpu::Instance,
    pub adapter: wgpu::Adapter,
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
}

impl Gpu {
    /// A Vulkan instance (the only backend kumo builds, to keep the binary lean).
    pub fn instance(display: Option<Box<dyn wgpu::wgt::WgpuHasDisplayHandle>>) -> wgpu::Instance {
        let mut desc = match display {
            Some(d) => wgpu::InstanceDescriptor::new_with_display_handle(d),
            None => wgpu::InstanceDescriptor::new_without_display_handle(),
        };
        desc.backends = wgpu::Backends::VULKAN;
        wgpu::Instance::new(desc)
    }

    /// Opens the best adapter (one that can draw to `surface`, when given).
    pub fn open(instance: wgpu::Instance, surface: Option<&wgpu::Surface<'_>>) -> Result<Self, GpuError> {
        let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            force_fallback_adapter: false,
            compatible_surface: surface,
            apply_limit_buckets: false,
        }))
        .map_err(|e| GpuError::NoAdapter(e.to_string()))?;
        let info = adapter.get_info();
        tracing::info!("drawing with {} ({:?}, {})", info.name, info.backend, info.driver);
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("kumo"),
            required_limits: wgpu::Limits::downlevel_defaults().using_resolution(adapter.limits()),
            ..Default::default()
        }))
        .map_err(|e| GpuError::Device { adapter: info.name.clone(), reason: e.to_string() })?;
        Ok(Self { instance, adapter, device, queue })
    }

    /// The adapter's name, as the overlay and logs show it.
    pub fn adapter_name(&self) -> String {
        self.adapter.get_info().name
    }
}

/// The textures of the picture being shown.
struct Planes {
    width: u32,
    height: u32,
    textures: [wgpu::Texture; 3],
    bind_group: wgpu::BindGroup,
}

/// Draws I420 pictures with the YUV→RGB shader.
pub struct VideoRenderer {
    pipeline: wgpu::RenderPipeline,
    layout: wgpu::BindGroupLayout,
    sampler: wgpu::Sampler,
    conversion: wgpu::Buffer,
    color: Option<ColorSpace>,
    planes: Option<Planes>,
}

impl VideoRenderer {
    /// A renderer for targets of `format` (use a non-sRGB format: video is already
    /// gamma-encoded).
    pub fn new(device: &wgpu::Device, format: wgpu::TextureFormat) -> Self {
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("kumo yuv"),
            source: wgpu::ShaderSource::Wgsl(SHADER.into()),
        });
        let plane = |binding| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::FRAGMENT,
            ty: wgpu::BindingType::Texture {
                sample_type: wgpu::TextureSampleType::Float { filterable: true },
                view_dimension: wgpu::TextureViewDimension::D2,
                multisampled: false,
            },
            count: None,
        };
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("kumo yuv planes"),
            entries: &[
                plane(0),
                plane(1),
                plane(2),
                wgpu::BindGroupLayoutEntry {
                    binding: 3,
                    visibility: wgpu::ShaderStages::FRAGMENT,
                    ty: wgpu::BindingType::Sampler(wgpu::SamplerBindingType::Filtering),
                    count: None,
                },
                wgpu::BindGroupLayoutEntry {
                    binding: 4,
                    visibility: wgpu::ShaderStages::FRAGMENT,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                },
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("kumo yuv"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
            label: Some("kumo yuv"),
            layout: Some(&pipeline_layout),
            vertex: wgpu::VertexState {
                module: &module,
                entry_point: Some("vs_main"),
                compilation_options: wgpu::PipelineCompilationOptions::default(),
                buffers: &[],
            },
            primitive: wgpu::PrimitiveState::default(),
            depth_stencil: None,
            multisample: wgpu::MultisampleState::default(),
            fragment: Some(wgpu::FragmentState {
                module: &module,
                entry_point: Some("fs_main"),
                compilation_options: wgpu::PipelineCompilationOptions::default(),
                targets: &[Some(wgpu::ColorTargetState { format, blend: None, write_mask: wgpu::ColorWrites::ALL })],
            }),
            multiview_mask: None,
            cache: None,
        });
        let sampler = device.create_sampler(&wgpu::SamplerDescriptor {
            label: Some("kumo yuv"),
            address_mode_u: wgpu::AddressMode::ClampToEdge,
            address_mode_v: wgpu::AddressMode::ClampToEdge,
            mag_filter: wgpu::FilterMode::Linear,
            min_filter: wgpu::FilterMode::Linear,
            ..Default::default()
        });
        let conversion = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("kumo yuv conversion"),
            size: 48,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Self { pipeline, layout, sampler, conversion, color: None, planes: None }
    }

    /// Sets the colour space pictures are converted from.
    pub fn set_color(&mut self, queue: &wgpu::Queue, color: ColorSpace) {
        if self.color == Some(color) {
            return;
        }
        let mut bytes = [0u8; 48];
        for (chunk, value) in bytes.chunks_exact_mut(4).zip(color.yuv_to_rgb().as_flattened()) {
            chunk.copy_from_slice(&value.to_le_bytes());
        }
        queue.write_buffer(&self.conversion, 0, &bytes);
        self.color = Some(color);
    }

    /// The size of the picture on the GPU, if one was uploaded.
    pub fn picture_size(&self) -> Option<(u32, u32)> {
        self.planes.as_ref().map(|p| (p.width, p.height))
    }

    /// Uploads a picture's planes (recreating the textures when its size changed). Pictures
    /// with planes shorter than their size claims are ignored.
    pub fn upload(&mut self, device: &wgpu::Device, queue: &wgpu::Queue, picture: &Picture) {
        let (w, h) = (picture.width as u32, picture.height as u32);
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let sizes = [(w, h), (cw, ch), (cw, ch)];
        let data = [&picture.y, &picture.u, &picture.v];
        if w == 0 || h == 0 || data.iter().zip(sizes).any(|(d, (pw, ph))| d.len() < (pw * ph) as usize) {
            return;
        }
        if self.picture_size() != Some((w, h)) {
            self.planes = Some(self.create_planes(device, w, h));
        }
        let Some(planes) = &self.planes else { return };
        for ((texture, bytes), (pw, ph)) in planes.textures.iter().zip(data).zip(sizes) {
            queue.write_texture(
                wgpu::TexelCopyTextureInfo {
                    texture,
                    mip_level: 0,
                    origin: wgpu::Origin3d::ZERO,
                    aspect: wgpu::TextureAspect::All,
                },
                &bytes[..(pw * ph) as usize],
                wgpu::TexelCopyBufferLayout { offset: 0, bytes_per_row: Some(pw), rows_per_image: Some(ph) },
                wgpu::Extent3d { width: pw, height: ph, depth_or_array_layers: 1 },
            );
        }
    }

    fn create_planes(&self, device: &wgpu::Device, w: u32, h: u32) -> Planes {
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let texture = |label, width, height| {
            device.create_texture(&wgpu::TextureDescriptor {
                label: Some(label),
                size: wgpu::Extent3d { width, height, depth_or_array_layers: 1 },
                mip_level_count: 1,
                sample_count: 1,
                dimension: wgpu::TextureDimension::D2,
                format: wgpu::TextureFormat::R8Unorm,
                usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
                view_formats: &[],
            })
        };
        let textures =
            [texture("kumo plane Y", w, h), texture("kumo plane U", cw, ch), texture("kumo plane V", cw, ch)];
        let views = textures.each_ref().map(|t| t.create_view(&wgpu::TextureViewDescriptor::default()));
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("kumo yuv planes"),
            layout: &self.layout,
            entries: &[
                wgpu::BindGroupEntry { binding: 0, resource: wgpu::BindingResource::TextureView(&views[0]) },
                wgpu::BindGroupEntry { binding: 1, resource: wgpu::BindingResource::TextureView(&views[1]) },
                wgpu::BindGroupEntry { binding: 2, resource: wgpu::BindingResource::TextureView(&views[2]) },
                wgpu::BindGroupEntry { binding: 3, resource: wgpu::BindingResource::Sampler(&self.sampler) },
                wgpu::BindGroupEntry { binding: 4, resource: self.conversion.as_entire_binding() },
            ],
        });
        Planes { width: w, height: h, textures, bind_group }
    }

    /// Draws the uploaded picture into `viewport` of the pass's target. Draws nothing before
    /// the first upload or into an empty rectangle.
    pub fn draw(&self, pass: &mut wgpu::RenderPass<'_>, viewport: Rect) {
        let Some(planes) = &self.planes else { return };
        if viewport.is_empty() || self.color.is_none() {
            return;
        }
        pass.set_viewport(
            viewport.x as f32,
            viewport.y as f32,
            viewport.width as f32,
            viewport.height as f32,
            0.0,
            1.0,
        );
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &planes.bind_group, &[]);
        pass.draw(0..3, 0..1);
    }
}

/// Everything one presented frame draws: the video letterboxed, then the egui layer (state
/// screen, banner, overlay) over the whole target. The window draws into its surface with it,
/// the benchmark into an offscreen texture, so both measure the same path.
pub struct Compositor {
    pub video: VideoRenderer,
    egui: egui_wgpu::Renderer,
}

impl Compositor {
    pub fn new(device: &wgpu::Device, format: wgpu::TextureFormat) -> Self {
        Self {
            video: VideoRenderer::new(device, format),
            egui: egui_wgpu::Renderer::new(device, format, egui_wgpu::RendererOptions::default()),
        }
    }

    /// Records and submits one frame into `target` of `size` pixels. `ui` is egui's output for
    /// this frame; `show_video` is false while a state screen replaces the picture.
    pub fn render(
        &mut self,
        gpu: &Gpu,
        target: &wgpu::TextureView,
        size: (u32, u32),
        show_video: bool,
        ctx: &egui::Context,
        ui: egui::FullOutput,
    ) {
        let (device, queue) = (&gpu.device, &gpu.queue);
        let pixels_per_point = ui.pixels_per_point;
        let jobs = ctx.tessellate(ui.shapes, pixels_per_point);
        let screen = egui_wgpu::ScreenDescriptor { size_in_pixels: [size.0, size.1], pixels_per_point };
        let mut textures = ui.textures_delta;
        for (id, deltas) in &textures.set {
            for delta in deltas {
                self.egui.update_texture(device, queue, *id, delta);
            }
        }
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("kumo frame") });
        let extra = self.egui.update_buffers(device, queue, &mut encoder, &jobs, &screen);
        {
            let mut pass = encoder
                .begin_render_pass(&wgpu::RenderPassDescriptor {
                    label: Some("kumo frame"),
                    color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                        view: target,
                        depth_slice: None,
                        resolve_target: None,
                        ops: wgpu::Operations {
                            load: wgpu::LoadOp::Clear(wgpu::Color { r: 0.02, g: 0.02, b: 0.03, a: 1.0 }),
                            store: wgpu::StoreOp::Store,
                        },
                    })],
                    ..Default::default()
                })
                .forget_lifetime();
            if show_video && let Some(stream) = self.video.picture_size() {
                self.video.draw(&mut pass, crate::core::view::layout::fit(stream, size));
            }
            pass.set_viewport(0.0, 0.0, size.0 as f32, size.1 as f32, 0.0, 1.0);
            self.egui.render(&mut pass, &jobs, &screen);
        }
        queue.submit(extra.into_iter().chain([encoder.finish()]));
        for id in &textures.free {
            self.egui.free_texture(id);
        }
        textures.clear();
    }
}

/// An offscreen colour target for tests and the benchmark.
pub fn offscreen_target(gpu: &Gpu, size: (u32, u32)) -> wgpu::Texture {
    gpu.device.create_texture(&wgpu::TextureDescriptor {
        label: Some("kumo offscreen"),
        size: wgpu::Extent3d { width: size.0, height: size.1, depth_or_array_layers: 1 },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: OFFSCREEN_FORMAT,
        usage: wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::COPY_SRC,
        view_formats: &[],
    })
}

/// The format of offscreen targets: 8-bit RGBA without sRGB encoding, like the window's view.
pub const OFFSCREEN_FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Rgba8Unorm;

/// Renders `picture` into a fresh offscreen `target` of size (width, height), letterboxed,
/// and reads the pixels back as tightly packed RGBA. For tests and the benchmark; the window
/// draws to its surface instead.
pub fn render_offscreen(
    gpu: &Gpu,
    renderer: &mut VideoRenderer,
    picture: &Picture,
    color: ColorSpace,
    size: (u32, u32),
) -> Vec<u8> {
    let target = offscreen_target(gpu, size);
    let view = target.create_view(&wgpu::TextureViewDescriptor::default());
    renderer.set_color(&gpu.queue, color);
    renderer.upload(&gpu.device, &gpu.queue, picture);
    let viewport = crate::core::view::layout::fit((picture.width as u32, picture.height as u32), size);
    let mut encoder =
        gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("kumo offscreen") });
    {
        let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
            label: Some("kumo offscreen"),
            color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                view: &view,
                depth_slice: None,
                resolve_target: None,
                ops: wgpu::Operations { load: wgpu::LoadOp::Clear(wgpu::Color::BLACK), store: wgpu::StoreOp::Store },
            })],
            ..Default::default()
        });
        renderer.draw(&mut pass, viewport);
    }
    gpu.queue.submit([encoder.finish()]);
    read_back(gpu, &target, size)
}

/// The pixels of an offscreen `target` of `size` (`OFFSCREEN_FORMAT`), as tightly packed RGBA,
/// once the GPU has finished drawing it. For tests and the benchmark.
pub fn read_back(gpu: &Gpu, target: &wgpu::Texture, (width, height): (u32, u32)) -> Vec<u8> {
    let mut encoder =
        gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("kumo readback") });
    let row = (width * 4).next_multiple_of(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT);
    let buffer = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("kumo readback"),
        size: u64::from(row) * u64::from(height),
        usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
        mapped_at_creation: false,
    });
    encoder.copy_texture_to_buffer(
        wgpu::TexelCopyTextureInfo {
            texture: target,
            mip_level: 0,
            origin: wgpu::Origin3d::ZERO,
            aspect: wgpu::TextureAspect::All,
        },
        wgpu::TexelCopyBufferInfo {
            buffer: &buffer,
            layout: wgpu::TexelCopyBufferLayout { offset: 0, bytes_per_row: Some(row), rows_per_image: Some(height) },
        },
        wgpu::Extent3d { width, height, depth_or_array_layers: 1 },
    );
    gpu.queue.submit([encoder.finish()]);
    let slice = buffer.slice(..);
    slice.map_async(wgpu::MapMode::Read, |_| {});
    gpu.device.poll(wgpu::PollType::wait_indefinitely()).ok();
    let Ok(mapped) = slice.get_mapped_range() else { return Vec::new() };
    let mut pixels = Vec::with_capacity((width * height * 4) as usize);
    for r in 0..height as usize {
        let start = r * row as usize;
        pixels.extend_from_slice(&mapped[start..start + width as usize * 4]);
    }
    drop(mapped);
    buffer.unmap();
    pixels
}
