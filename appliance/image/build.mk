# Box image and its tests (image/, docs/image.md). Root only; needs mk/packages/image.txt.
#   make image              build/image/otasuke.img (+ vmlinuz, initrd.img), from `make deb`
#   make image-test         also otasuke-test.img, then the boot test in qemu (TAP)
#   make image-faults       power-loss and disk-full tests (slow: several boots)
#   make image-efi-test     boots the test image through UEFI (OVMF + systemd-boot) and
#                           tests the factory-reset boot entry (slow: two firmware boots)
#   make repo               signed apt repository of build/deb/*.deb in build/repo/
#                           (key: build/repo-key/ or OTASUKE_REPO_GNUPGHOME; image/repo.sh)
# IMAGE_NO_DEB=1 reuses build/deb/otasuke_*.deb instead of running `make deb` first.
.PHONY: image image-test image-test-build image-faults image-efi-test repo

IMAGE_DEB_DEP := $(if $(filter 1,$(IMAGE_NO_DEB)),,deb)

image: $(IMAGE_DEB_DEP)
	image/build.sh

image-test-build: $(IMAGE_DEB_DEP)
	image/build.sh --test

image-test: image-test-build
	image/test/boot-test.sh

image-faults: image-test-build
	tests/image/run.sh

image-efi-test: image-test-build
	image/test/efi-test.sh

repo: $(IMAGE_DEB_DEP)
	image/repo.sh build
