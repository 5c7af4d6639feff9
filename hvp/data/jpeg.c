// The image loader's JPEG path: libjpeg(-turbo) decodes the whole image, as PIL does, and Pillow's
// bilinear resampling (the filter of torchvision's Resize on PIL images: the same coefficients and the
// same fixed-point rounding, horizontal pass then vertical) brings the shorter side to the load size,
// written channel-major. The result equals PIL's `Image.open(f).convert('RGB').resize(size,
// BILINEAR)` byte for byte where both use the same libjpeg. One synchronous call per image, made
// from a decode worker thread: no libuv pool, no pipeline to build.
//
// decodeFile(path: string, loadSize: number) -> { pixels: ArrayBuffer (uint8 C,H,W), height, width }
// (loadSize 0: no resize). Throws for a file without a JPEG's start marker, a CMYK JPEG or a
// corrupt one; the caller then decodes it with sharp.

#include <node_api.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <stdbool.h>
#include <jpeglib.h>

#define PRECISION_BITS (32 - 8 - 2)

struct error_jmp {
  struct jpeg_error_mgr pub;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

static void on_error(j_common_ptr cinfo) {
  struct error_jmp *err = (struct error_jmp *)cinfo->err;
  (*cinfo->err->format_message)(cinfo, err->message);
  longjmp(err->jump, 1);
}

// A corrupt-data warning (level -1: a truncated file, a bad Huffman code) fails the decode as an
// error does, rather than returning the grey libjpeg fills in: sharp, which then gets the file, and
// PIL both refuse such a file. Trace messages (level >= 0) are ignored.
static void on_message(j_common_ptr cinfo, int level) {
  if (level < 0) on_error(cinfo);
}

static unsigned char clip8(int v) {
  return v < 0 ? 0 : v > 255 ? 255 : (unsigned char)v;
}

// Pillow's precompute_coeffs for the bilinear filter (support 1): for each output index its first input
// index, its tap count, and fixed-point weights (ksize per output).
static int coeffs(int in_size, int out_size, int **bounds_out, int **kk_out) {
  double scale = (double)in_size / out_size;
  double filterscale = scale < 1.0 ? 1.0 : scale;
  double support = 1.0 * filterscale;
  int ksize = (int)ceil(support) * 2 + 1;
  int *bounds = malloc(sizeof(int) * 2 * out_size);
  int *kk = malloc(sizeof(int) * ksize * out_size);
  double *k = malloc(sizeof(double) * ksize);
  if (!bounds || !kk || !k) {
    free(bounds);
    free(kk);
    free(k);
    return -1;
  }
  for (int xx = 0; xx < out_size; xx++) {
    double center = (xx + 0.5) * scale;
    double ww = 0.0;
    double ss = 1.0 / filterscale;
    int xmin = (int)(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = (int)(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    for (int x = 0; x < xmax; x++) {
      double t = fabs((x + xmin - center + 0.5) * ss);
      double w = t < 1.0 ? 1.0 - t : 0.0;
      k[x] = w;
      ww += w;
    }
    for (int x = 0; x < ksize; x++) {
      double w = x < xmax && ww != 0.0 ? k[x] / ww : 0.0;
      kk[xx * ksize + x] = (int)(w < 0 ? w * (1 << PRECISION_BITS) - 0.5 : w * (1 << PRECISION_BITS) + 0.5);
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  free(k);
  *bounds_out = bounds;
  *kk_out = kk;
  return ksize;
}

// Resize RGB (H, W, 3) to (oh, ow) as Pillow does (horizontal pass to uint8, then vertical), and
// write the result channel-major into out (3, oh, ow).
static int resize_chw(const unsigned char *src, int h, int w, int oh, int ow, unsigned char *out) {
  int *xb, *xk, *yb, *yk;
  int xks = coeffs(w, ow, &xb, &xk);
  if (xks < 0) return -1;
  int yks = coeffs(h, oh, &yb, &yk);
  if (yks < 0) {
    free(xb);
    free(xk);
    return -1;
  }
  // The rows the vertical pass reads: all of them for a downscale of the whole image.
  unsigned char *mid = malloc((size_t)h * ow * 3);
  if (!mid) {
    free(xb); free(xk); free(yb); free(yk);
    return -1;
  }
  for (int y = 0; y < h; y++) {
    const unsigned char *row = src + (size_t)y * w * 3;
    unsigned char *dst = mid + (size_t)y * ow * 3;
    for (int xx = 0; xx < ow; xx++) {
      int xmin = xb[xx * 2], xmax = xb[xx * 2 + 1];
      const int *k = xk + xx * xks;
      int s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
      const unsigned char *p = row + xmin * 3;
      for (int x = 0; x < xmax; x++, p += 3) {
        s0 += p[0] * k[x];
        s1 += p[1] * k[x];
        s2 += p[2] * k[x];
      }
      dst[xx * 3] = clip8(s0 >> PRECISION_BITS);
      dst[xx * 3 + 1] = clip8(s1 >> PRECISION_BITS);
      dst[xx * 3 + 2] = clip8(s2 >> PRECISION_BITS);
    }
  }
  size_t plane = (size_t)oh * ow;
  for (int yy = 0; yy < oh; yy++) {
    int ymin = yb[yy * 2], ymax = yb[yy * 2 + 1];
    const int *k = yk + yy * yks;
    unsigned char *r = out + (size_t)yy * ow;
    unsigned char *g = r + plane;
    unsigned char *b = g + plane;
    for (int xx = 0; xx < ow; xx++) {
      int s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
      const unsigned char *p = mid + ((size_t)ymin * ow + xx) * 3;
      for (int y = 0; y < ymax; y++, p += (size_t)ow * 3) {
        s0 += p[0] * k[y];
        s1 += p[1] * k[y];
        s2 += p[2] * k[y];
      }
      r[xx] = clip8(s0 >> PRECISION_BITS);
      g[xx] = clip8(s1 >> PRECISION_BITS);
      b[xx] = clip8(s2 >> PRECISION_BITS);
    }
  }
  free(mid); free(xb); free(xk); free(yb); free(yk);
  return 0;
}

static napi_value throw_error(napi_env env, const char *msg) {
  napi_throw_error(env, NULL, msg);
  return NULL;
}

// The load size's output dimensions as torchvision's Resize(load) computes them: the shorter side
// becomes `load`, the longer int(load * long / short), truncated.
static void target_size(int h, int w, int load, int *oh, int *ow) {
  if (w >= h) {
    *oh = load;
    *ow = (int)((double)load * w / h);
  } else {
    *ow = load;
    *oh = (int)((double)load * h / w);
  }
  if (*oh < 1) *oh = 1;
  if (*ow < 1) *ow = 1;
}

static napi_value decode(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2) return throw_error(env, "decodeFile(path, loadSize)");
  char path[4096];
  size_t path_len;
  if (napi_get_value_string_utf8(env, argv[0], path, sizeof path, &path_len) != napi_ok || path_len >= sizeof path - 1) {
    return throw_error(env, "decodeFile: path must be a string");
  }
  FILE *f = fopen(path, "rb");
  if (!f) return throw_error(env, "decodeFile: cannot open the file");
  fseek(f, 0, SEEK_END);
  long length = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *data = length > 2 ? malloc((size_t)length) : NULL;
  size_t got = data ? fread(data, 1, (size_t)length, f) : 0;
  fclose(f);
  // Not a JPEG (no SOI marker): the caller decodes it another way.
  if (!data || got != (size_t)length || data[0] != 0xFF || data[1] != 0xD8) {
    free(data);
    return throw_error(env, "decodeFile: not a JPEG file");
  }
  int32_t load = 0;
  napi_get_value_int32(env, argv[1], &load);

  struct jpeg_decompress_struct cinfo;
  struct error_jmp err;
  // Assigned after setjmp and read after a longjmp: volatile, so the handler frees what was allocated.
  unsigned char *volatile rgb = NULL;
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = on_error;
  err.pub.emit_message = on_message;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    free(rgb);
    free(data);
    return throw_error(env, err.message);
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, data, (unsigned long)length);
  jpeg_read_header(&cinfo, TRUE);
  if (cinfo.num_components != 1 && cinfo.num_components != 3) {
    jpeg_destroy_decompress(&cinfo);
    free(data);
    return throw_error(env, "decode: not a greyscale or YCbCr/RGB JPEG");
  }
  cinfo.out_color_space = JCS_RGB;
  int h0 = (int)cinfo.image_height, w0 = (int)cinfo.image_width;
  int oh = h0, ow = w0;
  if (load > 0) target_size(h0, w0, load, &oh, &ow);
  jpeg_start_decompress(&cinfo);
  int h = (int)cinfo.output_height, w = (int)cinfo.output_width;
  if (cinfo.output_components != 3) {
    jpeg_destroy_decompress(&cinfo);
    free(data);
    return throw_error(env, "decode: libjpeg gave no RGB output");
  }
  rgb = malloc((size_t)h * w * 3);
  if (!rgb) {
    jpeg_destroy_decompress(&cinfo);
    free(data);
    return throw_error(env, "decode: out of memory");
  }
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = rgb + (size_t)cinfo.output_scanline * w * 3;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  free(data);
  if (load <= 0) {
    oh = h;
    ow = w;
  }

  napi_value out_ab;
  void *out;
  if (napi_create_arraybuffer(env, (size_t)3 * oh * ow, &out, &out_ab) != napi_ok) {
    free(rgb);
    return throw_error(env, "decode: out of memory");
  }
  if (oh == h && ow == w) {
    size_t plane = (size_t)h * w;
    unsigned char *o = out;
    for (size_t p = 0; p < plane; p++) {
      o[p] = rgb[p * 3];
      o[plane + p] = rgb[p * 3 + 1];
      o[2 * plane + p] = rgb[p * 3 + 2];
    }
  } else if (resize_chw(rgb, h, w, oh, ow, out) != 0) {
    free(rgb);
    return throw_error(env, "decode: out of memory");
  }
  free(rgb);

  napi_value result, v;
  napi_create_object(env, &result);
  napi_set_named_property(env, result, "pixels", out_ab);
  napi_create_int32(env, oh, &v);
  napi_set_named_property(env, result, "height", v);
  napi_create_int32(env, ow, &v);
  napi_set_named_property(env, result, "width", v);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "decodeFile", NAPI_AUTO_LENGTH, decode, NULL, &fn);
  napi_set_named_property(env, exports, "decodeFile", fn);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
