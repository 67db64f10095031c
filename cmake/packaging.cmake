# Installation layout and the Debian package (cpack -G DEB).
#
#   cmake --build build --target ckptd ckptctl && (cd build && cpack -G DEB)
#
# Binaries go to <prefix>/bin (prefix /usr in the package); the systemd
# files and the configuration have fixed absolute places, as Debian wants
# them: /lib/systemd/system, /usr/lib/tmpfiles.d, /etc/ckptd (a conffile).

# `cpack`/`make install` must not build the whole tree (tests, benches):
# they package what is built; build ckptd and ckptctl first.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)

install(TARGETS ckptd ckptctl RUNTIME DESTINATION bin COMPONENT ckptd)
install(FILES ${PROJECT_SOURCE_DIR}/systemd/ckptd.service ${PROJECT_SOURCE_DIR}/systemd/ckptd.socket
        DESTINATION /lib/systemd/system COMPONENT ckptd)
install(FILES ${PROJECT_SOURCE_DIR}/systemd/ckptd.tmpfiles
        DESTINATION /usr/lib/tmpfiles.d RENAME ckptd.conf COMPONENT ckptd)
install(FILES ${PROJECT_SOURCE_DIR}/systemd/ckptd.toml
        DESTINATION /etc/ckptd PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ COMPONENT ckptd)

set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "ckptd")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "ckptd maintainers <ckptd@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "per-node checkpoint/restore daemon for Linux and CUDA processes (CRIU)")
set(CPACK_PACKAGE_DESCRIPTION
    "ckptd checkpoints and restores Linux process trees, including CUDA GPU processes, with CRIU, keeps a catalog of every snapshot in RocksDB and serves the Cedana /v2/checkpoints REST API. Runs as the systemd service ckptd.service (or socket-activated by ckptd.socket).")
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
# Debug info stays in the build tree; the package ships stripped binaries.
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_SECTION "admin")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
# Depends: computed from the binaries' ELF NEEDED entries by dpkg-shlibdeps.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# CRIU >= 4.2 is needed to checkpoint anything, but Debian 12 ships 3.17:
# scripts/install-criu.sh builds it into /opt/ckptd/criu (the default
# criu_path), so it cannot be a hard dependency. A distro criu >= 4.2
# satisfies the recommendation; set criu_path = "/usr/sbin/criu" then.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "criu (>= 4.2)")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "nvidia-cuda-toolkit")
# Maintainer scripts and the conffiles list: dpkg would otherwise overwrite
# an edited /etc/ckptd/ckptd.toml on upgrade.
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    "${PROJECT_SOURCE_DIR}/cmake/deb/conffiles;${PROJECT_SOURCE_DIR}/cmake/deb/postinst;${PROJECT_SOURCE_DIR}/cmake/deb/prerm;${PROJECT_SOURCE_DIR}/cmake/deb/postrm")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
include(CPack)
