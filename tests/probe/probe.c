/* probe: a small static program the e2e tests copy into a container rootfs
 * to ask the kernel what the container may do. Each subcommand prints one
 * line and exits 0 (ok) or 1 (refused / failed). Syscalls are made with
 * raw syscall(2) so libc wrappers cannot substitute another syscall.
 *
 *   seccomp                 the Seccomp: value of /proc/self/status
 *   caps                    CapEff of /proc/self/status (hex)
 *   unshare-user | add-key | keyctl | perf-event-open | userfaultfd |
 *   io-uring-setup | getpid | mkdir PATH | personality N
 *                           "ok" or "errno NAME"
 *   mknod-open TYPE MAJ MIN PATH   (TYPE c or b) "ok", "mknod errno X" or "open errno X"
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static const char *errname(int e) {
    switch (e) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EACCES: return "EACCES";
    case EEXIST: return "EEXIST";
    case EINVAL: return "EINVAL";
    case ENOSYS: return "ENOSYS";
    case EFAULT: return "EFAULT";
    case EBADF: return "EBADF";
    case ENOMEM: return "ENOMEM";
    case EROFS: return "EROFS";
    case ENXIO: return "ENXIO";
    case ENODEV: return "ENODEV";
    case EDQUOT: return "EDQUOT";
    case ENOTSUP: return "ENOTSUP";
    case EMFILE: return "EMFILE";
    case ENOKEY: return "ENOKEY";
    default: {
        static char buf[32];
        snprintf(buf, sizeof buf, "%d", e);
        return buf;
    }
    }
}

/* Prints "ok" or "errno NAME" for a raw syscall's result. */
static int report(long r) {
    if (r < 0) {
        printf("errno %s\n", errname(errno));
        return 1;
    }
    printf("ok\n");
    return 0;
}

static int status_field(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) {
        printf("open /proc/self/status: errno %s\n", errname(errno));
        return 1;
    }
    char line[256];
    size_t n = strlen(key);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, n) == 0 && line[n] == ':') {
            char *v = line + n + 1;
            while (*v == ' ' || *v == '\t') v++;
            fputs(v, stdout);
            return 0;
        }
    }
    printf("no %s in /proc/self/status\n", key);
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: probe SUBCOMMAND [ARGS]\n");
        return 2;
    }
    const char *c = argv[1];
    if (!strcmp(c, "seccomp")) return status_field("Seccomp");
    if (!strcmp(c, "caps")) return status_field("CapEff");
    if (!strcmp(c, "getpid")) return report(syscall(SYS_getpid));
    if (!strcmp(c, "unshare-user")) return report(syscall(SYS_unshare, CLONE_NEWUSER));
    if (!strcmp(c, "add-key"))
        return report(syscall(SYS_add_key, "user", "probe", "x", 1, -2 /* KEY_SPEC_PROCESS_KEYRING */));
    if (!strcmp(c, "keyctl")) return report(syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -2, 0));
    if (!strcmp(c, "perf-event-open")) {
        /* A zeroed attr is a valid hardware cycles counter request. */
        unsigned char attr[128] = {0};
        *(unsigned int *)(attr + 4) = sizeof attr; /* attr.size */
        return report(syscall(SYS_perf_event_open, attr, 0, -1, -1, 0));
    }
    if (!strcmp(c, "userfaultfd")) return report(syscall(SYS_userfaultfd, O_CLOEXEC));
    if (!strcmp(c, "io-uring-setup")) {
        unsigned char params[120] = {0};
        return report(syscall(SYS_io_uring_setup, 1, params));
    }
    if (!strcmp(c, "mkdir") && argc == 3) return report(syscall(SYS_mkdir, argv[2], 0755));
    if (!strcmp(c, "personality") && argc == 3)
        return report(syscall(SYS_personality, strtoul(argv[2], NULL, 0)));
    if (!strcmp(c, "mknod-open") && argc == 6) {
        mode_t type = argv[2][0] == 'b' ? S_IFBLK : S_IFCHR;
        dev_t dev = makedev(strtoul(argv[3], NULL, 0), strtoul(argv[4], NULL, 0));
        if (syscall(SYS_mknodat, AT_FDCWD, argv[5], type | 0600, dev) < 0) {
            printf("mknod errno %s\n", errname(errno));
            return 1;
        }
        long fd = syscall(SYS_openat, AT_FDCWD, argv[5], O_RDWR | O_CLOEXEC);
        if (fd < 0) {
            printf("open errno %s\n", errname(errno));
            return 1;
        }
        printf("ok\n");
        return 0;
    }
    fprintf(stderr, "probe: unknown subcommand %s\n", c);
    return 2;
}
