/* What a GPU Space's container sees: the devices NVML lists and whether CUDA initialises.
 * Loads the driver's own libraries (mounted by the runtime) with dlopen: no CUDA toolkit,
 * no Python, so the image stays a few megabytes. Exit 0 only if a GPU is visible. */
#include <dlfcn.h>
#include <stdio.h>

typedef int (*fn_void)(void);
typedef int (*fn_uint_p)(unsigned int *);
typedef int (*fn_int_p)(int *);
typedef int (*fn_handle)(unsigned int, void **);
typedef int (*fn_str)(void *, char *, unsigned int);
typedef int (*fn_cu_init)(unsigned int);
typedef int (*fn_cu_get)(int *, int);
typedef int (*fn_cu_name)(char *, int, int);

int main(void) {
    void *nvml = dlopen("libnvidia-ml.so.1", RTLD_NOW);
    if (!nvml) { printf("NVML: cannot load libnvidia-ml.so.1 (%s)\n", dlerror()); return 2; }
    fn_void init = (fn_void)dlsym(nvml, "nvmlInit_v2");
    fn_uint_p count = (fn_uint_p)dlsym(nvml, "nvmlDeviceGetCount_v2");
    fn_handle handle = (fn_handle)dlsym(nvml, "nvmlDeviceGetHandleByIndex_v2");
    fn_str name = (fn_str)dlsym(nvml, "nvmlDeviceGetName");
    fn_str uuid = (fn_str)dlsym(nvml, "nvmlDeviceGetUUID");
    int rc = init();
    if (rc != 0) { printf("NVML: nvmlInit failed (%d)\n", rc); return 3; }
    unsigned int n = 0;
    count(&n);
    printf("NVML: %u GPU(s) visible\n", n);
    for (unsigned int i = 0; i < n; i++) {
        void *h = 0; char nm[96] = "", id[96] = "";
        handle(i, &h); name(h, nm, sizeof nm); uuid(h, id, sizeof id);
        printf("NVML: GPU %u: %s %s\n", i, nm, id);
    }
    void *cuda = dlopen("libcuda.so.1", RTLD_NOW);
    if (!cuda) { printf("CUDA: cannot load libcuda.so.1 (%s)\n", dlerror()); return n ? 0 : 4; }
    fn_cu_init cu_init = (fn_cu_init)dlsym(cuda, "cuInit");
    fn_int_p cu_count = (fn_int_p)dlsym(cuda, "cuDeviceGetCount");
    fn_cu_get cu_get = (fn_cu_get)dlsym(cuda, "cuDeviceGet");
    fn_cu_name cu_name = (fn_cu_name)dlsym(cuda, "cuDeviceGetName");
    int cu_rc = cu_init(0), cn = 0;
    printf("CUDA: cuInit -> %d\n", cu_rc);
    if (cu_rc == 0) {
        cu_count(&cn);
        for (int i = 0; i < cn; i++) {
            int dev = 0; char nm[96] = "";
            cu_get(&dev, i); cu_name(nm, sizeof nm, dev);
            printf("CUDA: device %d: %s\n", i, nm);
        }
    }
    return (n > 0 && cu_rc == 0) ? 0 : 5;
}
