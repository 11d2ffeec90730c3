/*
 * A fake NVML (libnvidia-ml.so.1) for pytest-dynamo's tests, so that the GPU
 * probe and the audit are tested on machines without a GPU. The tests
 * compile it with the system C compiler.
 *
 * Every call reads the file named by FAKE_NVML_CONFIG, so a test can change
 * the machine while it runs (a process appearing on a GPU). One record per
 * line, fields separated by '|':
 *
 *   init|9                                   nvmlInit_v2 answers 9 (driver not loaded)
 *   driver|550.54.15
 *   gpu|NAME|UUID|TOTAL_MIB|FREE_MIB|MIG     MIG: 1 when MIG mode is on
 *   mig|GPU_INDEX|NAME|UUID|TOTAL_MIB        a MIG instance of that GPU
 *   proc|GPU_INDEX|PID|USED_MIB              a compute process on that GPU
 *
 * When FAKE_NVML_LOG names a file, nvmlInit_v2 appends "init <pid>" to it.
 *
 * Environment variables make the library misbehave, as broken drivers do:
 *   FAKE_NVML_INIT_SLEEP=S   nvmlInit_v2 sleeps S seconds first (a wedged
 *                            driver: 3600)
 *   FAKE_NVML_COUNT=N        nvmlDeviceGetCount_v2 answers N, whatever the
 *                            machine has (4294967295: a corrupt answer)
 *   FAKE_NVML_MIG_COUNT=N    nvmlDeviceGetMaxMigDeviceCount answers N
 *   FAKE_NVML_PROC_COUNT=N   nvmlDeviceGetComputeRunningProcesses_v3, asked
 *                            for the count, answers N
 * A GPU line with FREE_MIB above TOTAL_MIB is another impossible answer.
 *
 * Build flags leave symbols out, as old or broken libraries do:
 *   -DFAKE_NVML_NO_INIT      no nvmlInit_v2
 *   -DFAKE_NVML_NO_COUNT     no nvmlDeviceGetCount_v2
 *   -DFAKE_NVML_OLD          no nvmlDeviceGetMemoryInfo_v2 nor
 *                            nvmlDeviceGetComputeRunningProcesses_v3
 *   -DFAKE_NVML_NO_SHUTDOWN  no nvmlShutdown
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef int nvmlReturn_t;
typedef struct fake_device *nvmlDevice_t;

enum {
    NVML_SUCCESS = 0,
    NVML_ERROR_UNINITIALIZED = 1,
    NVML_ERROR_INVALID_ARGUMENT = 2,
    NVML_ERROR_NOT_SUPPORTED = 3,
    NVML_ERROR_NOT_FOUND = 6,
    NVML_ERROR_INSUFFICIENT_SIZE = 7,
};

typedef struct {
    unsigned int version;
    unsigned long long total;
    unsigned long long reserved;
    unsigned long long free;
    unsigned long long used;
} nvmlMemory_v2_t;

typedef struct {
    unsigned int pid;
    unsigned long long usedGpuMemory;
    unsigned int gpuInstanceId;
    unsigned int computeInstanceId;
} nvmlProcessInfo_t;

#define MAX_GPUS 16
#define MAX_MIGS 7
#define MAX_PROCS 64
#define TEXT 96
#define MIB (1024ULL * 1024ULL)

struct instance {
    char name[TEXT];
    char uuid[TEXT];
    unsigned long long total_mib;
};

struct gpu {
    char name[TEXT];
    char uuid[TEXT];
    unsigned long long total_mib;
    unsigned long long free_mib;
    int mig;
    int migs;
    struct instance instance[MAX_MIGS];
};

struct proc {
    int gpu;
    unsigned int pid;
    unsigned long long mib;
};

struct machine {
    int init;
    char driver[TEXT];
    int gpus;
    struct gpu gpu[MAX_GPUS];
    int procs;
    struct proc proc[MAX_PROCS];
};

/* Split `line` at '|' in place; empty fields are kept. */
static int split(char *line, char **fields, int max) {
    int n = 0;
    fields[n++] = line;
    for (char *c = line; *c && n < max; c++) {
        if (*c == '|') {
            *c = '\0';
            fields[n++] = c + 1;
        }
    }
    return n;
}

/* An unsigned number from the environment; 0 when unset. */
static int knob(const char *name, unsigned int *value) {
    const char *text = getenv(name);
    if (!text || !*text) {
        return 0;
    }
    *value = (unsigned int)strtoul(text, NULL, 10);
    return 1;
}

static void copy(char *to, const char *from) {
    strncpy(to, from, TEXT - 1);
    to[TEXT - 1] = '\0';
}

static void load(struct machine *m) {
    memset(m, 0, sizeof *m);
    const char *path = getenv("FAKE_NVML_CONFIG");
    FILE *f = path ? fopen(path, "r") : NULL;
    if (!f) {
        return;
    }
    char line[512];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        char *v[8];
        int n = split(line, v, 8);
        if (!strcmp(v[0], "init") && n >= 2) {
            m->init = atoi(v[1]);
        } else if (!strcmp(v[0], "driver") && n >= 2) {
            copy(m->driver, v[1]);
        } else if (!strcmp(v[0], "gpu") && n >= 6 && m->gpus < MAX_GPUS) {
            struct gpu *g = &m->gpu[m->gpus++];
            copy(g->name, v[1]);
            copy(g->uuid, v[2]);
            g->total_mib = strtoull(v[3], NULL, 10);
            g->free_mib = strtoull(v[4], NULL, 10);
            g->mig = atoi(v[5]);
        } else if (!strcmp(v[0], "mig") && n >= 5) {
            int i = atoi(v[1]);
            if (i >= 0 && i < m->gpus && m->gpu[i].migs < MAX_MIGS) {
                struct instance *s = &m->gpu[i].instance[m->gpu[i].migs++];
                copy(s->name, v[2]);
                copy(s->uuid, v[3]);
                s->total_mib = strtoull(v[4], NULL, 10);
            }
        } else if (!strcmp(v[0], "proc") && n >= 4 && m->procs < MAX_PROCS) {
            struct proc *p = &m->proc[m->procs++];
            p->gpu = atoi(v[1]);
            p->pid = (unsigned int)strtoul(v[2], NULL, 10);
            p->mib = strtoull(v[3], NULL, 10);
        }
    }
    fclose(f);
}

/* Handles: 1 + gpu for a GPU, 1 + gpu + 256 * (instance + 1) for a MIG instance. */
static nvmlDevice_t handle(int gpu, int instance) {
    return (nvmlDevice_t)(uintptr_t)(1 + gpu + 256 * (instance + 1));
}

static int decode(nvmlDevice_t h, const struct machine *m, int *gpu, int *instance) {
    uintptr_t v = (uintptr_t)h;
    if (v == 0) {
        return 0;
    }
    *gpu = (int)((v - 1) % 256);
    *instance = (int)((v - 1) / 256) - 1;
    if (*gpu >= m->gpus) {
        return 0;
    }
    return *instance < m->gpu[*gpu].migs;
}

static nvmlReturn_t text(char *out, unsigned int length, const char *value) {
    if (!out || strlen(value) + 1 > length) {
        return NVML_ERROR_INSUFFICIENT_SIZE;
    }
    strcpy(out, value);
    return NVML_SUCCESS;
}

#ifndef FAKE_NVML_NO_INIT
nvmlReturn_t nvmlInit_v2(void) {
    struct machine m;
    load(&m);
    const char *log = getenv("FAKE_NVML_LOG");
    FILE *f = log ? fopen(log, "a") : NULL;
    if (f) {
        fprintf(f, "init %d\n", (int)getpid());
        fclose(f);
    }
    unsigned int pause;
    if (knob("FAKE_NVML_INIT_SLEEP", &pause)) {
        while (pause > 0) {
            pause = sleep(pause);
        }
    }
    return m.init;
}
#endif

nvmlReturn_t nvmlInitWithFlags(unsigned int flags) {
    (void)flags;
    struct machine m;
    load(&m);
    return m.init;
}

#ifndef FAKE_NVML_NO_SHUTDOWN
nvmlReturn_t nvmlShutdown(void) { return NVML_SUCCESS; }
#endif

nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length) {
    struct machine m;
    load(&m);
    if (!m.driver[0]) {
        return NVML_ERROR_NOT_SUPPORTED;
    }
    return text(version, length, m.driver);
}

#ifndef FAKE_NVML_NO_COUNT
nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count) {
    struct machine m;
    load(&m);
    if (!knob("FAKE_NVML_COUNT", count)) {
        *count = (unsigned int)m.gpus;
    }
    return NVML_SUCCESS;
}
#endif

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device) {
    struct machine m;
    load(&m);
    if (index >= (unsigned int)m.gpus) {
        return NVML_ERROR_INVALID_ARGUMENT;
    }
    *device = handle((int)index, -1);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length) {
    struct machine m;
    int g, i;
    load(&m);
    if (!decode(device, &m, &g, &i)) {
        return NVML_ERROR_INVALID_ARGUMENT;
    }
    return text(name, length, i < 0 ? m.gpu[g].name : m.gpu[g].instance[i].name);
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length) {
    struct machine m;
    int g, i;
    load(&m);
    if (!decode(device, &m, &g, &i)) {
        return NVML_ERROR_INVALID_ARGUMENT;
    }
    return text(uuid, length, i < 0 ? m.gpu[g].uuid : m.gpu[g].instance[i].uuid);
}

#ifndef FAKE_NVML_OLD
nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *memory) {
    struct machine m;
    int g, i;
    load(&m);
    if (!decode(device, &m, &g, &i)) {
        return NVML_ERROR_INVALID_ARGUMENT;
    }
    unsigned long long total = i < 0 ? m.gpu[g].total_mib : m.gpu[g].instance[i].total_mib;
    unsigned long long free = i < 0 ? m.gpu[g].free_mib : total;
    memory->total = total * MIB;
    memory->free = free * MIB;
    memory->reserved = 0;
    memory->used = (total - free) * MIB;
    return NVML_SUCCESS;
}
#endif

nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t device, unsigned int *current, unsigned int *pending) {
    struct machine m;
    int g, i;
    load(&m);
    if (!decode(device, &m, &g, &i) || i >= 0) {
        return NVML_ERROR_INVALID_ARGUMENT;
    }
    *current = *pending = (unsigned int)m.gpu[g].mig;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(nvmlDevice_t device, unsigned int *count) {
    struct machine m;
    int g, i;
    load(&m);
    if (!decode(device, &m, &g, &i) || i >= 0) {
        return NVML_ERROR_INVALID_ARGUMENT;
    }
    if (!knob("FAKE_NVML_MIG_COUNT", count)) {
        *count = MAX_MIGS;
    }
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t device, unsigned int index, nvmlDevice_t *mig) {
    struct machine m;
    int g, i;
    load(&m);
    if (!decode(device, &m, &g, &i) || i >= 0) {
        return NVML_ERROR_INVALID_ARGUMENT;
    }
    if (index >= (unsigned int)m.gpu[g].migs) {
        return NVML_ERROR_NOT_FOUND;
    }
    *mig = handle(g, (int)index);
    return NVML_SUCCESS;
}

#ifndef FAKE_NVML_OLD
nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device, unsigned int *count,
                                                     nvmlProcessInfo_t *infos) {
    struct machine m;
    int g, i;
    load(&m);
    if (!decode(device, &m, &g, &i) || i >= 0) {
        return NVML_ERROR_INVALID_ARGUMENT;
    }
    unsigned int n = 0;
    for (int p = 0; p < m.procs; p++) {
        n += m.proc[p].gpu == g;
    }
    unsigned int claimed;
    if (!infos && knob("FAKE_NVML_PROC_COUNT", &claimed)) {
        *count = claimed;
        return claimed ? NVML_ERROR_INSUFFICIENT_SIZE : NVML_SUCCESS;
    }
    if (!infos || *count < n) {
        *count = n;
        return n ? NVML_ERROR_INSUFFICIENT_SIZE : NVML_SUCCESS;
    }
    unsigned int k = 0;
    for (int p = 0; p < m.procs; p++) {
        if (m.proc[p].gpu == g) {
            infos[k].pid = m.proc[p].pid;
            infos[k].usedGpuMemory = m.proc[p].mib * MIB;
            infos[k].gpuInstanceId = 0xFFFFFFFFu;
            infos[k].computeInstanceId = 0xFFFFFFFFu;
            k++;
        }
    }
    *count = n;
    return NVML_SUCCESS;
}
#endif
