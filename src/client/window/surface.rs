//! The drawing side of the window: either the wgpu surface (its configuration, present mode and
//! the texture each redraw draws in) or, on a machine without a GPU, a softbuffer surface the
//! software presenter fills (X11 shared memory, Wayland shm).

use crate::client::decode::Picture;
use crate::client::present::cpu::CpuCompositor;
use crate::client::present::{Compositor, Gpu, GpuError};
use crate::core::view::color::ColorSpace;
use crate::core::view::layout::{self, AdapterKind, PresentMode, Presenter, Renderer, Vsync};
use std::num::NonZeroU32;
use std::sync::Arc;
use winit::window::Window;

/// The window's drawing: egui's state and one of the two presenters.
pub(super) struct Graphics {
    pub(super) window: Arc<Window>,
    pub(super) egui_state: egui_winit::State,
    drawing: Drawing,
}

enum Drawing {
    Gpu(Box<GpuSurface>),
    Cpu(Box<CpuSurface>),
}

/// The GPU path: a wgpu surface and the compositor drawing into it.
struct GpuSurface {
    gpu: Gpu,
    surface: wgpu::Surface<'static>,
    config: wgpu::SurfaceConfiguration,
    /// The format drawn in: the surface's, without sRGB encoding (video is gamma-encoded).
    view_format: wgpu::TextureFormat,
    compositor: Compositor,
    present_mode: PresentMode,
    /// The texture this redraw draws in, once acquired.
    frame: Option<wgpu::SurfaceTexture>,
}

/// The software path: a softbuffer surface the CPU compositor fills.
struct CpuSurface {
    /// Kept for the surface's sake (softbuffer's connection to the display).
    _context: softbuffer::Context<Arc<Window>>,
    surface: softbuffer::Surface<Arc<Window>, Arc<Window>>,
    size: (u32, u32),
    compositor: CpuCompositor,
}

impl Graphics {
    /// The drawing for `window`: the presenter `renderer` asks for (on `auto`, the GPU where a
    /// real one exists, else the CPU), egui's state, and the colour space pictures are in.
    pub(super) fn open(
        window: Arc<Window>,
        vsync: Vsync,
        renderer: Renderer,
        color: ColorSpace,
        egui_ctx: &egui::Context,
    ) -> anyhow::Result<Self> {
        let instance = Gpu::instance(None);
        let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::VULKAN));
        let kinds: Vec<AdapterKind> = adapters
            .iter()
            .map(|a| match a.get_info().device_type {
                wgpu::DeviceType::Cpu => AdapterKind::Software,
                _ => AdapterKind::Hardware,
            })
            .collect();
        let presenter = layout::choose_presenter(renderer, &kinds);
        let (drawing, max_texture) = match presenter {
            Presenter::Cpu => {
                if renderer == Renderer::Auto {
                    let only = adapters.first().map(|a| a.get_info().name);
                    tracing::info!(
                        "no GPU found{}: drawing on the CPU with kumo's software presenter (--renderer gpu to use the rasterizer anyway)",
                        only.map(|n| format!(" (only {n}, a software rasterizer)")).unwrap_or_default()
                    );
                }
                drop(adapters);
                (Drawing::Cpu(Box::new(CpuSurface::open(&window, color)?)), 8192)
            }
            Presenter::Gpu => {
                if adapters.is_empty() {
                    return Err(GpuError::NoAdapter("no Vulkan driver is installed".into()).into());
                }
                drop(adapters);
                let gpu = GpuSurface::open(instance, &window, vsync, color)?;
                let max = gpu.gpu.device.limits().max_texture_dimension_2d as usize;
                (Drawing::Gpu(Box::new(gpu)), max)
            }
        };
        let egui_state = egui_winit::State::new(
            egui_ctx.clone(),
            egui::ViewportId::ROOT,
            &window,
            Some(window.scale_factor() as f32),
            None,
            Some(max_texture),
        );
        Ok(Self { window, egui_state, drawing })
    }

    pub(super) fn resize(&mut self, width: u32, height: u32) {
        if width > 0 && height > 0 {
            match &mut self.drawing {
                Drawing::Gpu(g) => g.resize(width, height),
                Drawing::Cpu(c) => c.resize(width, height),
            }
            self.window.request_redraw();
        }
    }

    /// The size drawn at, in pixels.
    pub(super) fn size(&self) -> (u32, u32) {
        match &self.drawing {
            Drawing::Gpu(g) => (g.config.width, g.config.height),
            Drawing::Cpu(c) => c.size,
        }
    }

    /// How frames reach the display, as the overlay names it.
    pub(super) fn mode(&self) -> String {
        match &self.drawing {
            Drawing::Gpu(g) => format!("{:?}", g.present_mode),
            Drawing::Cpu(_) => "CPU".into(),
        }
    }

    /// The size of the picture shown, if any.
    pub(super) fn picture_size(&self) -> Option<(u32, u32)> {
        match &self.drawing {
            Drawing::Gpu(g) => g.compositor.video.picture_size(),
            Drawing::Cpu(c) => c.compositor.picture_size(),
        }
    }

    /// Sets the colour space pictures are converted from.
    pub(super) fn set_color(&mut self, color: ColorSpace) {
        match &mut self.drawing {
            Drawing::Gpu(g) => g.compositor.video.set_color(&g.gpu.queue, color),
            Drawing::Cpu(c) => c.compositor.set_color(color),
        }
    }

    /// Gets ready to draw a frame: false when there is nothing to draw in this turn (the
    /// surface is being reconfigured or the window is hidden; the next turn draws).
    pub(super) fn begin(&mut self) -> bool {
        match &mut self.drawing {
            Drawing::Gpu(g) => {
                if g.frame.is_none() {
                    g.frame = g.next_texture(&self.window);
                }
                g.frame.is_some()
            }
            Drawing::Cpu(c) => c.size.0 > 0 && c.size.1 > 0,
        }
    }

    /// Hands a picture to the presenter (the GPU's upload, or the CPU's conversion); the
    /// picture's buffer may be reused once this returns.
    pub(super) fn upload(&mut self, picture: &Picture) {
        match &mut self.drawing {
            Drawing::Gpu(g) => g.compositor.video.upload(&g.gpu.device, &g.gpu.queue, picture),
            Drawing::Cpu(c) => c.compositor.upload(picture),
        }
    }

    /// Draws the frame begun with `begin` (the picture letterboxed when `show_video`, egui's
    /// `output` over it) and hands it to the display.
    pub(super) fn present(&mut self, show_video: bool, ctx: &egui::Context, output: egui::FullOutput) {
        match &mut self.drawing {
            Drawing::Gpu(g) => {
                let Some(frame) = g.frame.take() else { return };
                let view = frame
                    .texture
                    .create_view(&wgpu::TextureViewDescriptor { format: Some(g.view_format), ..Default::default() });
                let size = (g.config.width, g.config.height);
                g.compositor.render(&g.gpu, &view, size, show_video, ctx, output);
                self.window.pre_present_notify();
                g.gpu.queue.present(frame);
            }
            Drawing::Cpu(c) => {
                let size = c.size;
                match c.surface.buffer_mut() {
                    Ok(mut buffer) => {
                        c.compositor.render_ui(&mut buffer, size, show_video, ctx, output);
                        // No `pre_present_notify` here: on Wayland it makes winit hold each redraw
                        // for the compositor's frame callback, and under weston that paced the
                        // window at 39 fps with a third of the pictures dropped. softbuffer's
                        // wait for a free buffer paces it instead (60 fps, no drops).
                        if let Err(err) = buffer.present() {
                            tracing::debug!("the software presenter could not show a frame: {err}");
                        }
                    }
                    Err(err) => {
                        tracing::debug!("the software presenter has no buffer this turn: {err}");
                        c.compositor.skip_ui(output);
                    }
                }
            }
        }
    }
}

impl CpuSurface {
    fn open(window: &Arc<Window>, color: ColorSpace) -> anyhow::Result<Self> {
        let surface_error = |e: softbuffer::SoftBufferError| GpuError::Surface(format!("software presenter: {e}"));
        let context = softbuffer::Context::new(window.clone()).map_err(surface_error)?;
        let surface = softbuffer::Surface::new(&context, window.clone()).map_err(surface_error)?;
        let mut compositor = CpuCompositor::new();
        compositor.set_color(color);
        let mut this = Self { _context: context, surface, size: (0, 0), compositor };
        let size = window.inner_size();
        this.resize(size.width, size.height);
        tracing::debug!(width = size.width, height = size.height, "window surface: software presenter");
        Ok(this)
    }

    fn resize(&mut self, width: u32, height: u32) {
        let (Some(w), Some(h)) = (NonZeroU32::new(width), NonZeroU32::new(height)) else { return };
        match self.surface.resize(w, h) {
            Ok(()) => self.size = (width, height),
            Err(err) => tracing::warn!("the software presenter could not resize to {width}x{height}: {err}"),
        }
    }
}

impl GpuSurface {
    /// The surface for `window`, on a Vulkan GPU, in the present mode `vsync` asks for (or the
    /// nearest offered), with the compositor drawing into it.
    fn open(instance: wgpu::Instance, window: &Arc<Window>, vsync: Vsync, color: ColorSpace) -> anyhow::Result<Self> {
        let surface = instance.create_surface(window.clone()).map_err(|e| GpuError::Surface(e.to_string()))?;
        let gpu = Gpu::open(instance, Some(&surface))?;
        let caps = surface.get_capabilities(&gpu.adapter);
        let format = caps
            .formats
            .iter()
            .copied()
            .find(|f| !f.is_srgb())
            .or_else(|| caps.formats.first().copied())
            .ok_or_else(|| GpuError::Surface("the surface offers no format".into()))?;
        let view_format = format.remove_srgb_suffix();
        let supported: Vec<PresentMode> = caps
            .present_modes
            .iter()
            .filter_map(|m| match m {
                wgpu::PresentMode::Fifo => Some(PresentMode::Fifo),
                wgpu::PresentMode::Mailbox => Some(PresentMode::Mailbox),
                wgpu::PresentMode::Immediate => Some(PresentMode::Immediate),
                _ => None,
            })
            .collect();
        let (present_mode, note) = layout::choose_present_mode(vsync, &supported);
        if let Some(note) = note {
            tracing::warn!("{note}");
        }
        let size = window.inner_size();
        let config = wgpu::SurfaceConfiguration {
            usage: wgpu::TextureUsages::RENDER_ATTACHMENT,
            format,
            color_space: wgpu::SurfaceColorSpace::default(),
            width: size.width.max(1),
            height: size.height.max(1),
            present_mode: match present_mode {
                PresentMode::Fifo => wgpu::PresentMode::Fifo,
                PresentMode::Mailbox => wgpu::PresentMode::Mailbox,
                PresentMode::Immediate => wgpu::PresentMode::Immediate,
            },
            desired_maximum_frame_latency: 1,
            alpha_mode: caps.alpha_modes.first().copied().unwrap_or(wgpu::CompositeAlphaMode::Auto),
            view_formats: if view_format == format { vec![] } else { vec![view_format] },
        };
        surface.configure(&gpu.device, &config);
        tracing::debug!(?format, ?present_mode, width = config.width, height = config.height, "window surface");
        let mut compositor = Compositor::new(&gpu.device, view_format);
        compositor.video.set_color(&gpu.queue, color);
        Ok(Self { gpu, surface, config, view_format, compositor, present_mode, frame: None })
    }

    fn resize(&mut self, width: u32, height: u32) {
        self.config.width = width;
        self.config.height = height;
        self.surface.configure(&self.gpu.device, &self.config);
    }

    /// The surface's next texture to draw in, or `None` when there is none this turn (the
    /// surface is reconfigured or recreated as needed, and the next turn draws).
    fn next_texture(&mut self, window: &Arc<Window>) -> Option<wgpu::SurfaceTexture> {
        match self.surface.get_current_texture() {
            wgpu::CurrentSurfaceTexture::Success(frame) | wgpu::CurrentSurfaceTexture::Suboptimal(frame) => Some(frame),
            wgpu::CurrentSurfaceTexture::Outdated => {
                // Resized under us: configure again and draw on the next turn. The picture
                // stays in the slot (or uploaded), so that draw shows it (no black frame).
                let size = window.inner_size();
                if size.width > 0 && size.height > 0 {
                    self.resize(size.width, size.height);
                    window.request_redraw();
                }
                None
            }
            wgpu::CurrentSurfaceTexture::Lost => {
                // The surface itself is gone: make a new one for the same window.
                match self.gpu.instance.create_surface(window.clone()) {
                    Ok(surface) => {
                        surface.configure(&self.gpu.device, &self.config);
                        self.surface = surface;
                        tracing::info!("the window's surface was lost and has been recreated");
                    }
                    Err(err) => tracing::warn!("the window's surface was lost and cannot be recreated: {err}"),
                }
                None
            }
            wgpu::CurrentSurfaceTexture::Timeout | wgpu::CurrentSurfaceTexture::Occluded => {
                // Minimised or hidden: try again on the next wake-up or tick, not in a loop.
                None
            }
            wgpu::CurrentSurfaceTexture::Validation => {
                tracing::warn!("the surface reported a validation error; skipping a frame");
                None
            }
        }
    }
}
