# packaging/yocto/tagmoor_git.bb — tagmoor from git for OpenEmbedded / Yocto
# (docs/packaging.md says what was checked and what was not built).
# Put it in a layer (recipes-support/tagmoor/) and set SRC_URI and SRCREV to
# where your copy of the repository lives.
SUMMARY = "Static GitOps agent for edge devices"
DESCRIPTION = "tagmoor pulls a signed configuration repository over HTTPS, \
verifies the tracked tag, applies systemd units and Kubernetes manifests, \
rolls back a failed revision and reports upstream."
HOMEPAGE = "https://git.example.com/tagmoor"
SECTION = "admin"
# The project has not published a license yet.
LICENSE = "CLOSED"

SRC_URI = "git://git.example.com/tagmoor.git;protocol=https;branch=main"
SRCREV = "${AUTOREV}"
PV = "0.1.0+git"
# Written for openembedded-core master of 2026 (S is bitbake.conf's default;
# setting S = "${WORKDIR}/git" is fatal there). For scarthgap (5.0) and
# kirkstone (4.0) add: S = "${WORKDIR}/git", and PV = "0.1.0+git${SRCPV}".

inherit cmake systemd pkgconfig

# libgit2, curl, libyaml, scdoc: openembedded-core; libinih, libsodium:
# meta-oe; mbedtls: meta-networking.
DEPENDS = "libgit2 curl mbedtls libinih libyaml libsodium scdoc-native"

# No tests (they need cmocka and the test servers). The man pages go to
# ${PN}-doc.
EXTRA_OECMAKE = "-DTM_TESTS=OFF -DTM_MAN=ON"

do_install:append() {
	install -D -m 0644 ${S}/packaging/systemd/tagmoor.service ${D}${systemd_system_unitdir}/tagmoor.service
	install -D -m 0644 ${S}/packaging/tagmoor.ini ${D}${datadir}/tagmoor/tagmoor.ini
	install -D -m 0644 ${S}/packaging/tagmoor.ini.example ${D}${docdir}/tagmoor/tagmoor.ini.example
}

# Enabled; it starts once /etc/tagmoor/tagmoor.ini exists (ConditionPathExists=).
# An image adds that file (and /etc/tagmoor/allowed_signers) in a bbappend.
SYSTEMD_SERVICE:${PN} = "tagmoor.service"
SYSTEMD_AUTO_ENABLE:${PN} = "enable"

FILES:${PN} += "${datadir}/tagmoor"
