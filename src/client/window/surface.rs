//! The wgpu side of the window: the surface, its configuration and present mode, and the
//! texture each redraw draws in.

use crate::client::present::{Compositor, Gpu, GpuError};
use crate::core::view::color::ColorSpace;
use crate::core::view::layout::{self, PresentMode, Vsync};
use std::sync::Arc;
use winit::window::Window;

/// The GPU side of the window.
pub(super) struct Graphics {
    pub(super) window: Arc<Window>,
    pub(super) gpu: Gpu,
    surface: wgpu::Surface<'static>,
    pub(super) config: wgpu::SurfaceConfiguration,
    /// The format drawn in: the surface's, without sRGB encoding (video is gamma-encoded).
    pub(super) view_format: wgpu::TextureFormat,
    pub(super) compositor: Compositor,
    pub(super) egui_state: egui_winit::State,
    pub(super) present_mode: PresentMode,
}

impl Graphics {
    /// The surface for `window`, on a Vulkan GPU, in the present mode `vsync` asks for (or the
    /// nearest offered), with the compositor and egui's state drawing into it.
    pub(super) fn open(
        window: Arc<Window>,
        vsync: Vsync,
        color: ColorSpace,
        egui_ctx: &egui::Context,
    ) -> anyhow::Result<Self> {
        let instance = Gpu::instance(None);
        if pollster::block_on(instance.enumerate_adapters(wgpu::Backends::VULKAN)).is_empty() {
            return Err(GpuError::NoAdapter("no Vulkan driver is installed".into()).into());
        }
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
        tracing::info!(?format, ?present_mode, width = config.width, height = config.height, "window surface");
        let mut compositor = Compositor::new(&gpu.device, view_format);
        compositor.video.set_color(&gpu.queue, color);
        let egui_state = egui_winit::State::new(
            egui_ctx.clone(),
            egui::ViewportId::ROOT,
            &window,
            Some(window.scale_factor() as f32),
            None,
            Some(gpu.device.limits().max_texture_dimension_2d as usize),
        );
        Ok(Self { window, gpu, surface, config, view_format, compositor, egui_state, present_mode })
    }

    pub(super) fn resize(&mut self, width: u32, height: u32) {
        if width > 0 && height > 0 {
            self.config.width = width;
            self.config.height = height;
            self.surface.configure(&self.gpu.device, &self.config);
            self.window.request_redraw();
        }
    }

    /// The surface's next texture to draw in, or `None` when there is none this turn (the
    /// surface is reconfigured or recreated as needed, and the next turn draws).
    pub(super) fn next_texture(&mut self) -> Option<wgpu::SurfaceTexture> {
        match self.surface.get_current_texture() {
            wgpu::CurrentSurfaceTexture::Success(frame) | wgpu::CurrentSurfaceTexture::Suboptimal(frame) => Some(frame),
            wgpu::CurrentSurfaceTexture::Outdated => {
                // Resized under us: configure again and draw on the next turn. The picture
                // stays in the slot (or uploaded), so that draw shows it (no black frame).
                let size = self.window.inner_size();
                self.resize(size.width, size.height);
                None
            }
            wgpu::CurrentSurfaceTexture::Lost => {
                // The surface itself is gone: make a new one for the same window.
                match self.gpu.instance.create_surface(self.window.clone()) {
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
