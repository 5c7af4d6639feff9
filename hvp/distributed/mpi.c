// A thin Node-API binding of the few MPI calls data-parallel training needs: init, the rank and
// size of MPI_COMM_WORLD (and the rank within the node), barrier, broadcast, a summing all-reduce
// in place, all-gather, abort and finalize. Every call is blocking and made from the main thread
// (MPI_THREAD_FUNNELED is enough); buffers are typed arrays, reduced in place without a copy.
// Built by scripts/build-mpi.mjs with `mpicc -shared -fPIC` against Node's own headers.

#include <mpi.h>
#include <node_api.h>
#include <stdio.h>
#include <string.h>

#define CHECK_NAPI(env, call)                                   \
  do {                                                          \
    if ((call) != napi_ok) {                                    \
      napi_throw_error((env), NULL, "mpi: Node-API call failed"); \
      return NULL;                                              \
    }                                                           \
  } while (0)

static MPI_Comm local_comm = MPI_COMM_NULL;

// An MPI error becomes a JavaScript exception naming the call (MPI_ERRORS_RETURN is set at init).
static napi_value mpi_error(napi_env env, const char* what, int code) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(code, text, &len);
  char msg[MPI_MAX_ERROR_STRING + 64];
  snprintf(msg, sizeof msg, "mpi: %s failed: %.*s", what, len, text);
  napi_throw_error(env, NULL, msg);
  return NULL;
}

static napi_value number(napi_env env, double v) {
  napi_value out;
  napi_create_double(env, v, &out);
  return out;
}

// Argument `index` as a typed array: its data pointer, element count and MPI datatype.
static int typed_array_arg(napi_env env, napi_callback_info info, size_t index, void** data, size_t* count, MPI_Datatype* type) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc <= index) {
    napi_throw_type_error(env, NULL, "mpi: missing typed array argument");
    return 0;
  }
  bool is_typed = false;
  napi_is_typedarray(env, argv[index], &is_typed);
  if (!is_typed) {
    napi_throw_type_error(env, NULL, "mpi: expected a typed array");
    return 0;
  }
  napi_typedarray_type kind;
  napi_get_typedarray_info(env, argv[index], &kind, count, data, NULL, NULL);
  switch (kind) {
    case napi_float32_array: *type = MPI_FLOAT; break;
    case napi_float64_array: *type = MPI_DOUBLE; break;
    case napi_int32_array: *type = MPI_INT; break;
    case napi_uint8_array: *type = MPI_BYTE; break;
    default:
      napi_throw_type_error(env, NULL, "mpi: typed array must be Float32Array, Float64Array, Int32Array or Uint8Array");
      return 0;
  }
  return 1;
}

static int int_arg(napi_env env, napi_callback_info info, size_t index, int fallback) {
  size_t argc = 4;
  napi_value argv[4];
  int32_t v = fallback;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc > index) napi_get_value_int32(env, argv[index], &v);
  return v;
}

// init(): MPI_Init_thread with MPI_THREAD_FUNNELED; returns the thread level granted. Also splits
// MPI_COMM_WORLD by shared-memory node, for the local rank.
static napi_value init(napi_env env, napi_callback_info info) {
  int done = 0;
  MPI_Initialized(&done);
  int provided = MPI_THREAD_FUNNELED;
  if (!done) {
    int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS) return mpi_error(env, "MPI_Init_thread", rc);
  } else {
    MPI_Query_thread(&provided);
  }
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  if (local_comm == MPI_COMM_NULL) MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local_comm);
  return number(env, provided);
}

static napi_value rank(napi_env env, napi_callback_info info) {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return number(env, r);
}

static napi_value size(napi_env env, napi_callback_info info) {
  int s = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &s);
  return number(env, s);
}

static napi_value local_rank(napi_env env, napi_callback_info info) {
  int r = 0;
  if (local_comm != MPI_COMM_NULL) MPI_Comm_rank(local_comm, &r);
  return number(env, r);
}

static napi_value barrier(napi_env env, napi_callback_info info) {
  int rc = MPI_Barrier(MPI_COMM_WORLD);
  if (rc != MPI_SUCCESS) return mpi_error(env, "MPI_Barrier", rc);
  return NULL;
}

// broadcast(array, root): every rank's array gets root's values, in place.
static napi_value broadcast(napi_env env, napi_callback_info info) {
  void* data;
  size_t count;
  MPI_Datatype type;
  if (!typed_array_arg(env, info, 0, &data, &count, &type)) return NULL;
  int rc = MPI_Bcast(data, (int)count, type, int_arg(env, info, 1, 0), MPI_COMM_WORLD);
  if (rc != MPI_SUCCESS) return mpi_error(env, "MPI_Bcast", rc);
  return NULL;
}

// allreduceSum(array): the element-wise sum over all ranks, in place (MPI_IN_PLACE: no copy).
static napi_value allreduce_sum(napi_env env, napi_callback_info info) {
  void* data;
  size_t count;
  MPI_Datatype type;
  if (!typed_array_arg(env, info, 0, &data, &count, &type)) return NULL;
  if (type == MPI_BYTE) {
    napi_throw_type_error(env, NULL, "mpi: allreduceSum takes Float32Array, Float64Array or Int32Array");
    return NULL;
  }
  int rc = MPI_Allreduce(MPI_IN_PLACE, data, (int)count, type, MPI_SUM, MPI_COMM_WORLD);
  if (rc != MPI_SUCCESS) return mpi_error(env, "MPI_Allreduce", rc);
  return NULL;
}

// allgather(send, recv): recv (size × send's length, same type) gets every rank's send in rank order.
static napi_value allgather(napi_env env, napi_callback_info info) {
  void *send, *recv;
  size_t n_send, n_recv;
  MPI_Datatype t_send, t_recv;
  if (!typed_array_arg(env, info, 0, &send, &n_send, &t_send)) return NULL;
  if (!typed_array_arg(env, info, 1, &recv, &n_recv, &t_recv)) return NULL;
  int world = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  if (t_send != t_recv || n_recv != n_send * (size_t)world) {
    napi_throw_range_error(env, NULL, "mpi: allgather's receive array must have the send array's type and world size × its length");
    return NULL;
  }
  int rc = MPI_Allgather(send, (int)n_send, t_send, recv, (int)n_send, t_recv, MPI_COMM_WORLD);
  if (rc != MPI_SUCCESS) return mpi_error(env, "MPI_Allgather", rc);
  return NULL;
}

// abort(code): ends every rank of the job (mpirun reports `code`); does not return.
static napi_value abort_job(napi_env env, napi_callback_info info) {
  fflush(stdout);
  fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, int_arg(env, info, 0, 1));
  return NULL;
}

static napi_value finalize(napi_env env, napi_callback_info info) {
  int done = 0;
  MPI_Finalized(&done);
  if (!done) {
    if (local_comm != MPI_COMM_NULL) MPI_Comm_free(&local_comm);
    MPI_Finalize();
  }
  return NULL;
}

static napi_value module_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"init", NULL, init, NULL, NULL, NULL, napi_default, NULL},
      {"rank", NULL, rank, NULL, NULL, NULL, napi_default, NULL},
      {"size", NULL, size, NULL, NULL, NULL, napi_default, NULL},
      {"localRank", NULL, local_rank, NULL, NULL, NULL, napi_default, NULL},
      {"barrier", NULL, barrier, NULL, NULL, NULL, napi_default, NULL},
      {"broadcast", NULL, broadcast, NULL, NULL, NULL, napi_default, NULL},
      {"allreduceSum", NULL, allreduce_sum, NULL, NULL, NULL, napi_default, NULL},
      {"allgather", NULL, allgather, NULL, NULL, NULL, napi_default, NULL},
      {"abort", NULL, abort_job, NULL, NULL, NULL, napi_default, NULL},
      {"finalize", NULL, finalize, NULL, NULL, NULL, napi_default, NULL},
  };
  CHECK_NAPI(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, module_init)
