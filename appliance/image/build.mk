# Box image and its tests (image/, docs/image.md). Root only; needs mk/packages/image.txt.
#   make image              build/image/otasuke.img (+ vmlinuz, initrd.img), from `make deb`
#   make image-test         also otasuke-test.img, then the boot test in qemu (TAP)
#   make image-faults       power-loss and disk-full tests (slow: several boots)
# IMAGE_NO_DEB=1 reuses build/deb/otasuke_*.deb instead of running `make deb` first.
.PHONY: image image-test image-test-build image-faults

IMAGE_DEB_DEP := $(if $(filter 1,$(IMAGE_NO_DEB)),,deb)

image: $(IMAGE_DEB_DEP)
	image/build.sh

image-test-build: $(IMAGE_DEB_DEP)
	image/build.sh --test

image-test: image-test-build
	image/test/boot-test.sh

image-faults: image-test-build
	tests/image/run.sh
