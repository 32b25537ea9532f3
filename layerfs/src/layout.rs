//! Where everything lives under the store root.

use std::path::{Path, PathBuf};

/// The on-disk layout of one store root (see the crate docs).
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// A layout rooted at `root`, made absolute so printed paths are usable
    /// from any working directory.
    pub fn new(root: &Path) -> Layout {
        let root = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
        Layout { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `layers/sha256`: one directory per layer, named by its diff id hex.
    pub fn layers_dir(&self) -> PathBuf {
        self.root.join("layers/sha256")
    }

    pub fn layer(&self, hex: &str) -> PathBuf {
        self.layers_dir().join(hex)
    }

    /// `layers/meta/<hex>.json`: the layer's size; kept outside the layer
    /// dir because that dir is an overlay lowerdir seen by containers.
    pub fn layer_meta(&self, hex: &str) -> PathBuf {
        self.root.join("layers/meta").join(format!("{hex}.json"))
    }

    /// `layers/meta/<hex>.split`: the tar-split record that rebuilds the
    /// layer's tar byte for byte (see `split`).
    pub fn layer_split(&self, hex: &str) -> PathBuf {
        self.root.join("layers/meta").join(format!("{hex}.split"))
    }

    /// `layers/tmp`: half-extracted layers, renamed into place when complete.
    pub fn layers_tmp(&self) -> PathBuf {
        self.root.join("layers/tmp")
    }

    pub fn images_dir(&self) -> PathBuf {
        self.root.join("images")
    }

    pub fn index(&self) -> PathBuf {
        self.root.join("images/index.json")
    }

    /// The flock serializing every writer of the index and the layer store.
    pub fn lock(&self) -> PathBuf {
        self.root.join("images/index.lock")
    }

    pub fn config_blob(&self, hex: &str) -> PathBuf {
        self.root.join("images/sha256").join(format!("{hex}.json"))
    }

    pub fn containers(&self) -> PathBuf {
        self.root.join("containers")
    }

    pub fn container(&self, id: &str) -> PathBuf {
        self.containers().join(id)
    }

    pub fn volumes(&self) -> PathBuf {
        self.root.join("volumes")
    }
}
