# hostprof_bpf_object(NAME)
#
# Compiles bpf/NAME.bpf.c into a CO-RE object (clang -target bpf, BTF), generates
# NAME.skel.h with `bpftool gen skeleton`, and exposes both through the interface
# target `bpf_NAME`. The program's shared header bpf/NAME.h and every header in
# bpf/lib/ are dependencies, so editing the ABI rebuilds the skeleton.
find_program(BPF_CLANG NAMES clang clang-14 REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /usr/local/sbin REQUIRED)

if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
    set(HOSTPROF_BPF_ARCH x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
    set(HOSTPROF_BPF_ARCH arm64)
else()
    message(FATAL_ERROR "hostprof: no vendored vmlinux.h for ${CMAKE_SYSTEM_PROCESSOR}")
endif()

set(HOSTPROF_VMLINUX_DIR ${PROJECT_SOURCE_DIR}/bpf/vmlinux/${HOSTPROF_BPF_ARCH})
if(NOT EXISTS ${HOSTPROF_VMLINUX_DIR}/vmlinux.h)
    message(FATAL_ERROR "hostprof: missing ${HOSTPROF_VMLINUX_DIR}/vmlinux.h")
endif()

function(hostprof_bpf_object name)
    set(src ${PROJECT_SOURCE_DIR}/bpf/${name}.bpf.c)
    set(out_dir ${CMAKE_CURRENT_BINARY_DIR}/bpf_gen)
    set(obj ${out_dir}/${name}.bpf.o)
    set(skel ${out_dir}/${name}.skel.h)
    # Every header of bpf/ (the ABI headers include one another: profile.h includes
    # python.h) and bpf/lib/.
    file(GLOB lib_headers ${PROJECT_SOURCE_DIR}/bpf/lib/*.h ${PROJECT_SOURCE_DIR}/bpf/*.h)
    set(deps ${src} ${HOSTPROF_VMLINUX_DIR}/vmlinux.h ${lib_headers})
    set(werror)
    if(HOSTPROF_WERROR)
        set(werror -Werror)
    endif()
    add_custom_command(
        OUTPUT ${obj}
        COMMAND ${CMAKE_COMMAND} -E make_directory ${out_dir}
        COMMAND ${BPF_CLANG} -g -O2 -target bpf -D__TARGET_ARCH_${HOSTPROF_BPF_ARCH}
                -Wall ${werror} -Wno-unused-function
                -I${HOSTPROF_VMLINUX_DIR} -I${PROJECT_SOURCE_DIR}/bpf
                -c ${src} -o ${obj}
        DEPENDS ${deps}
        COMMENT "BPF ${name}.bpf.c"
        VERBATIM)
    add_custom_command(
        OUTPUT ${skel}
        COMMAND ${BPFTOOL} gen skeleton ${obj} name ${name}_bpf > ${skel}
        DEPENDS ${obj}
        COMMENT "skeleton ${name}.skel.h"
        VERBATIM)
    add_custom_target(bpf_${name}_gen DEPENDS ${skel})
    add_library(bpf_${name} INTERFACE)
    add_dependencies(bpf_${name} bpf_${name}_gen)
    target_include_directories(bpf_${name} INTERFACE ${out_dir} ${PROJECT_SOURCE_DIR}/bpf)
endfunction()
