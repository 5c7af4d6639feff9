// What every dataset gives the training loop and the evaluators: images as 8-bit pixels (CHW, the
// layout the view kernels read) with their label, plus the per-channel statistics views normalise by.

/** One decoded image: uint8 CHW pixels, size and label. */
export interface Image {
  /** uint8 pixels, channel-major (C, H, W). */
  pixels: Uint8Array;
  height: number;
  width: number;
  label: number;
}

/** Images by index with their labels, classes and pixel statistics. */
export interface Dataset {
  /** e.g. 'fashion-mnist/train'; used in logs and errors. */
  readonly name: string;
  readonly length: number;
  /** 1 (grey) or 3 (RGB). */
  readonly channels: number;
  readonly classes: readonly string[];
  /** Per-channel mean and std of the pixels scaled to [0, 1]: what Normalize uses. */
  readonly mean: readonly number[];
  readonly std: readonly number[];
  /** [H, W] when every image has this size (IDX, CIFAR); undefined for folders of mixed sizes. */
  readonly size?: readonly [number, number];
  /** Image `index` (0 <= index < length); rejects for unreadable files (the loader skips and counts those). */
  read(index: number): Promise<Image>;
}

/** A batch of images packed back to back, ready for one upload. */
export interface ImageBatch {
  /** All images' uint8 CHW pixels concatenated. */
  pixels: Uint8Array;
  /** Per image: element offset of its first pixel in `pixels`, its height and width. */
  offsets: Uint32Array;
  heights: Uint32Array;
  widths: Uint32Array;
  channels: number;
  labels: Int32Array;
  /** Dataset index of every image. */
  indices: Int32Array;
}
