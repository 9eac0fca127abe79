/**
 * Class lists of standard benchmarks, usable as `--classes cifar10`, `cifar100` or `imagenet1k`.
 * Sources: the CIFAR-10 and CIFAR-100 label names as published with the datasets (Krizhevsky 2009,
 * batches.meta / meta: label_names and fine_label_names, in label-index order), underscores
 * written as spaces. ImageNet-1k: see imagenet1k.ts.
 */
import { IMAGENET_1K } from "./imagenet1k.js";

export const LABEL_SETS: Readonly<Record<string, readonly string[]>> = {
  imagenet1k: IMAGENET_1K,
  cifar10: ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
  cifar100: [
    "apple", "aquarium fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
    "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
    "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
    "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard",
    "lamp", "lawn mower", "leopard", "lion", "lizard", "lobster", "man", "maple tree", "motorcycle", "mountain",
    "mouse", "mushroom", "oak tree", "orange", "orchid", "otter", "palm tree", "pear", "pickup truck", "pine tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket",
    "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider",
    "squirrel", "streetcar", "sunflower", "sweet pepper", "table", "tank", "telephone", "television", "tiger", "tractor",
    "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow tree", "wolf", "woman", "worm",
  ],
};

export function labelSet(name: string): readonly string[] | undefined {
  return Object.hasOwn(LABEL_SETS, name.toLowerCase()) ? LABEL_SETS[name.toLowerCase()] : undefined;
}
