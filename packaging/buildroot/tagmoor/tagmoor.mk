################################################################################
#
# tagmoor
#
################################################################################

# Set TAGMOOR_SITE to your copy of the repository (or use
# TAGMOOR_OVERRIDE_SRCDIR in local.mk for a checkout).
TAGMOOR_VERSION = main
TAGMOOR_SITE = https://git.example.com/tagmoor.git
TAGMOOR_SITE_METHOD = git
# The project has not published a license yet.
TAGMOOR_LICENSE = PROPRIETARY
TAGMOOR_DEPENDENCIES = host-pkgconf libgit2 libcurl mbedtls inih libyaml libsodium
# No tests (cmocka and the test servers), no man pages (no host scdoc).
TAGMOOR_CONF_OPTS = -DTM_TESTS=OFF -DTM_MAN=OFF

define TAGMOOR_INSTALL_TEMPLATE
	$(INSTALL) -D -m 0644 $(@D)/packaging/tagmoor.ini \
		$(TARGET_DIR)/usr/share/tagmoor/tagmoor.ini
endef
TAGMOOR_POST_INSTALL_TARGET_HOOKS += TAGMOOR_INSTALL_TEMPLATE

# Enabled by Buildroot's systemd presets at the end of the build.
define TAGMOOR_INSTALL_INIT_SYSTEMD
	$(INSTALL) -D -m 0644 $(@D)/packaging/systemd/tagmoor.service \
		$(TARGET_DIR)/usr/lib/systemd/system/tagmoor.service
endef

$(eval $(cmake-package))
