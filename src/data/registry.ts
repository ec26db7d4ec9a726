// Official data files: where they come from and how to recognise them (the datasets' official distributions).
// `decompressedMd5` covers re-compressed copies whose content is the official file.

export interface RegistryFile {
  /** File name in the data directory and the mirror. */
  file: string;
  /** Official download URL; absent for files only a mirror provides. */
  url?: string;
  md5: string;
  sha256?: string;
  bytes?: number;
  /** md5 of the gunzipped content (accepted instead of md5 for .gz files). */
  decompressedMd5?: string;
  /** Sub-folders of the mirror also searched (e.g. "mnist/"). */
  mirrorPaths?: string[];
  /** Absolute paths where an operating-system package installs the file (read in place). */
  systemPaths?: string[];
  description: string;
}

const MNIST_BASE = "https://ossci-datasets.s3.amazonaws.com/mnist/";
const FASHION_BASE = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/";

/** A Fashion-MNIST file: kept under `fashion-mnist/` (its names are MNIST's). */
function fashionMnist(name: string, md5: string, decompressedMd5: string, what: string): Record<string, RegistryFile> {
  const file = `fashion-mnist/${name}`;
  return {
    [file]: {
      file, url: FASHION_BASE + name, md5, decompressedMd5, systemPaths: [`/usr/share/datasets/${file}`],
      description: `Fashion-MNIST ${what} (idx)`,
    },
  };
}

export const REGISTRY: Record<string, RegistryFile> = {
  "cifar-10-python.tar.gz": {
    file: "cifar-10-python.tar.gz", url: "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    md5: "c58f30108f718f92721af3b95e74349a", description: "CIFAR-10, python pickle batches",
  },
  "cifar-10-binary.tar.gz": {
    file: "cifar-10-binary.tar.gz", url: "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
    md5: "c32a1d4ab5d03f1284b67883e8d87530", description: "CIFAR-10, binary batches",
  },
  "cifar-100-python.tar.gz": {
    file: "cifar-100-python.tar.gz", url: "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    md5: "eb9058c3a382ffc7106e4002c42a8d85", sha256: "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7",
    bytes: 169_001_437, description: "CIFAR-100, python pickle batches",
  },
  "cifar-100-binary.tar.gz": {
    file: "cifar-100-binary.tar.gz", url: "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
    md5: "03b5dce01913d631647c71ecec9e9cb8", description: "CIFAR-100, binary batches",
  },
  "train-images-idx3-ubyte.gz": {
    file: "train-images-idx3-ubyte.gz", url: MNIST_BASE + "train-images-idx3-ubyte.gz", md5: "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    decompressedMd5: "6bbc9ace898e44ae57da46a324031adb", mirrorPaths: ["mnist/"], description: "MNIST train images (idx)",
  },
  "train-labels-idx1-ubyte.gz": {
    file: "train-labels-idx1-ubyte.gz", url: MNIST_BASE + "train-labels-idx1-ubyte.gz", md5: "d53e105ee54ea40749a09fcbcd1e9432",
    mirrorPaths: ["mnist/"], description: "MNIST train labels (idx)",
  },
  "t10k-images-idx3-ubyte.gz": {
    file: "t10k-images-idx3-ubyte.gz", url: MNIST_BASE + "t10k-images-idx3-ubyte.gz", md5: "9fb629c4189551a2d022fa330f9573f3",
    mirrorPaths: ["mnist/"], description: "MNIST test images (idx)",
  },
  "t10k-labels-idx1-ubyte.gz": {
    file: "t10k-labels-idx1-ubyte.gz", url: MNIST_BASE + "t10k-labels-idx1-ubyte.gz", md5: "ec29112dd5afa0611ce80d1b7f02629c",
    mirrorPaths: ["mnist/"], description: "MNIST test labels (idx)",
  },
  // Fashion-MNIST (Xiao et al. 2017), zalandoresearch's official files and md5s. Debian's
  // `dataset-fashion-mnist` installs re-compressed copies: their decompressed content is the
  // official one (the decompressed md5s below, as torchvision-style loaders publish them).
  ...fashionMnist("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d", "f4a8712d7a061bf5bd6d2ca38dc4d50a", "train images"),
  ...fashionMnist("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe", "9018921c3c673c538a1fc5bad174d6f9", "train labels"),
  ...fashionMnist("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79", "8181f5470baa50b63fa0f6fddb340f0a", "test images"),
  ...fashionMnist("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310", "15d484375f8d13e6eb1aabb0c3f46965", "test labels"),
  "dtd-r1.0.1.tar.gz": {
    file: "dtd-r1.0.1.tar.gz", url: "https://www.robots.ox.ac.uk/~vgg/data/dtd/download/dtd-r1.0.1.tar.gz",
    md5: "fff73e5086ae6bdbea199a49dfb8a4c1", description: "Describable Textures Dataset (torchvision's file)",
  },
  "food-101.tar.gz": {
    file: "food-101.tar.gz", url: "http://data.vision.ee.ethz.ch/cvl/food-101.tar.gz",
    md5: "85eeb15f3717b99a5da872d97d918f87", description: "Food-101 (torchvision's file)",
  },
  "102flowers.tgz": {
    file: "102flowers.tgz", url: "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/102flowers.tgz",
    md5: "52808999861908f626f3c1f4e79d11fa", description: "Flowers-102 images (torchvision's file)",
  },
  "imagelabels.mat": {
    file: "imagelabels.mat", url: "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/imagelabels.mat",
    md5: "e0620be6f572b9609742df49c70aed4d", description: "Flowers-102 labels (MATLAB v5)",
  },
  "setid.mat": {
    file: "setid.mat", url: "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/setid.mat",
    md5: "a5357ecc9cb78c4bef273ce3793fc85c", description: "Flowers-102 splits (MATLAB v5)",
  },
  // Not an official distribution: the project's JPEG copy of CIFAR-10 (ImageFolder in a tarball),
  // available from the data mirror only.
  "cifar10-jpeg.tar.gz": {
    file: "cifar10-jpeg.tar.gz", md5: "7c81e05f23e9ae3b983a23b65a5643c9",
    description: "CIFAR-10 as JPEG files (train/<class>/NNNN.jpg, test/<class>/NNNN.jpg)",
  },
};

export function registryFile(name: string): RegistryFile {
  const f = REGISTRY[name];
  if (!f) throw new Error(`unknown data file '${name}'; known: ${Object.keys(REGISTRY).join(", ")}`);
  return f;
}
