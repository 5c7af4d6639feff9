// One entry point from a data spec (as the CLI's --dataset/--data flags give it) to a Dataset, with
// errors that say what was looked for and how to get it; plus subsets for quick runs.

import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { cifarDir, openCifar10 } from './cifar.js';
import { DEFAULT_FASHION_MNIST_DIR, checkIndex, findIdxFile, openIdx, type Split } from './idx.js';
import { IMAGE_EXTENSIONS, openImageFolder } from './image-folder.js';
import type { Dataset, Image } from './types.js';

/** Kinds of data set openDataset reads. */
export type DatasetKind = 'fashion-mnist' | 'mnist' | 'cifar10' | 'folder';

/** Which data set to open: kind, directory, split. */
export interface DatasetSpec {
  kind: DatasetKind | 'auto';
  /** Defaults to the built-in Fashion-MNIST directory for 'fashion-mnist' and 'auto'. */
  dir?: string;
  split: Split;
  /** Folders only: shorter side after decoding. */
  loadSize?: number;
}

const HOW_TO_FIX = 'run `npm run setup -- --data` (installs the built-in Fashion-MNIST) or pass --data DIR';

/** The kind of the data in `dir`: IDX files, CIFAR-10 batches, or class folders of images. */
export function detectKind(dir: string): DatasetKind {
  const splits: Split[] = ['train', 'test'];
  if (splits.some((s) => findIdxFile(dir, s, 'images') || findIdxFile(dir, s, 'labels'))) {
    // MNIST and Fashion-MNIST share file names; the directory's name is all that tells them apart.
    return /fashion|fmnist/i.test(resolve(dir)) ? 'fashion-mnist' : 'mnist';
  }
  if (cifarDir(dir)) return 'cifar10';
  if (looksLikeImageFolder(dir)) return 'folder';
  throw new Error(
    `cannot tell what data set ${dir} holds: expected MNIST-style IDX files (train-images-idx3-ubyte[.gz], ...), ` +
      `CIFAR-10 binary batches (data_batch_1.bin, ..., test_batch.bin) or class folders (<class>/<image>.jpg); ${HOW_TO_FIX}`,
  );
}

function looksLikeImageFolder(dir: string): boolean {
  const subdirs = (d: string) => readdirSync(d).filter((n) => !n.startsWith('.') && statSync(join(d, n)).isDirectory());
  const hasImages = (d: string) => readdirSync(d).some((n) => (IMAGE_EXTENSIONS as readonly string[]).some((e) => n.toLowerCase().endsWith(e)));
  const roots = ['train', 'val'].map((s) => join(dir, s)).filter((d) => existsSync(d));
  return (roots.length ? roots : [dir]).some((d) => subdirs(d).some((c) => hasImages(join(d, c))));
}

/** Open the data set a spec names; a missing directory or files, or an empty split, is an Error with the fix. */
export async function openDataset(spec: DatasetSpec): Promise<Dataset> {
  const dir = spec.dir ?? (spec.kind === 'fashion-mnist' || spec.kind === 'auto' ? DEFAULT_FASHION_MNIST_DIR : undefined);
  if (!dir) throw new Error(`data set ${spec.kind} has no built-in location: pass --data DIR`);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new Error(`data directory ${dir} does not exist (looking for ${spec.kind === 'auto' ? 'a data set' : spec.kind}); ${HOW_TO_FIX}`);
  }
  const kind = spec.kind === 'auto' ? detectKind(dir) : spec.kind;
  try {
    switch (kind) {
      case 'fashion-mnist':
      case 'mnist':
        return await openIdx(dir, spec.split, kind);
      case 'cifar10':
        return await openCifar10(dir, spec.split);
      case 'folder':
        return await openImageFolder(dir, spec.split, { loadSize: spec.loadSize });
      default:
        throw new Error(`unknown data set kind '${kind as string}' (fashion-mnist, mnist, cifar10, folder or auto)`);
    }
  } catch (e) {
    throw new Error(`${(e as Error).message}; ${HOW_TO_FIX}`, { cause: e });
  }
}

/** A data set whose labels are known without decoding (every data set in this folder, and their subsets). */
export interface LabelledDataset extends Dataset {
  readonly labels: ArrayLike<number>;
}

/** Whether the data set knows every label without reading images. */
export function hasLabels(ds: Dataset): ds is LabelledDataset {
  const labels = (ds as Partial<LabelledDataset>).labels;
  return labels !== undefined && labels.length === ds.length;
}

/** A view of `indices` of `ds` (in that order); index i of the subset is `indices[i]` of `ds`. */
export function subset(ds: Dataset, indices: ArrayLike<number>, name = `${ds.name}[${indices.length}]`): Dataset {
  const map = Int32Array.from(indices);
  if (map.length === 0) throw new Error(`${ds.name}: a subset needs at least one index`);
  map.forEach((i) => checkIndex(ds, i));
  const parentLabels = hasLabels(ds) ? ds.labels : undefined;
  const view: Dataset & { labels?: Int32Array } = {
    name,
    length: map.length,
    channels: ds.channels,
    classes: ds.classes,
    mean: ds.mean,
    std: ds.std,
    size: ds.size,
    read: async (index: number): Promise<Image> => {
      checkIndex(view, index);
      return ds.read(map[index]);
    },
  };
  if (parentLabels) view.labels = map.map((i) => parentLabels[i]);
  return view;
}

/** Indices of the first `n` images of every class, in data set order (a balanced quick-run subset). */
export function firstPerClass(ds: Dataset, n: number): number[] {
  if (!hasLabels(ds)) throw new Error(`${ds.name}: labels are not known without decoding, cannot pick ${n} per class`);
  const taken = new Array<number>(ds.classes.length).fill(0);
  const picked: number[] = [];
  for (let i = 0; i < ds.length; i++) {
    const label = ds.labels[i];
    if (taken[label] < n) {
      taken[label]++;
      picked.push(i);
    }
  }
  return picked;
}

/** Indices 0..n-1 (or all, when the data set is smaller). */
export function firstN(ds: Dataset, n: number): number[] {
  return Array.from({ length: Math.min(n, ds.length) }, (_, i) => i);
}
