// Paper A's published numbers (arXiv 2404.17245: Table 1, the scatter figure, the introduction), beside which the notebooks
// put ours. Percentages. Only these and the claims' wording are typed in; everything of ours is
// computed from runs.

export interface Table1Row {
  method: string;
  trainable: string;
  target: number;
  retention: number;
  mean: number;
}

/** Table 1: DINO ViT-B/16 fine-tuned on CIFAR-100, retention = ImageNet-1k 20-NN. */
export const TABLE1: readonly Table1Row[] = [
  { method: "All", trainable: "85.9 M", target: 88.13, retention: 25.24, mean: 56.69 },
  { method: "Top-3", trainable: "21.3 M", target: 84.56, retention: 74.15, mean: 79.36 },
  { method: "Linear", trainable: "76.9 K", target: 80.57, retention: 76.11, mean: 78.34 },
  { method: "LoRA r=4", trainable: "301 K", target: 87.91, retention: 66.82, mean: 77.37 },
  { method: "LoRA r=8", trainable: "448 K", target: 88.27, retention: 65.99, mean: 77.13 },
  { method: "LoRA r=16", trainable: "743 K", target: 87.84, retention: 65.06, mean: 76.45 },
  { method: "Block p=1", trainable: "7.2 M", target: 82.72, retention: 75.75, mean: 79.24 },
  { method: "Block p=2", trainable: "14.3 M", target: 86.7, retention: 75.54, mean: 81.12 },
  { method: "Block p=3", trainable: "21.3 M", target: 88.58, retention: 74.61, mean: 81.6 },
  { method: "Block p=4", trainable: "28.4 M", target: 89.09, retention: 72.28, mean: 80.69 },
];

/** The untouched DINO ViT-B/16: ImageNet-1k 20-NN. */
export const SOURCE_RETENTION = 76.1;

/** The scatter figure (target accuracy / IN-1k 20-NN per method and target), read off the plot (+-0.2). */
export const SCATTER: Readonly<Record<string, Readonly<Record<string, { target: number; retention: number }>>>> = {
  "CIFAR-100": { Block: { target: 88.55, retention: 75.3 }, LoRA: { target: 88.49, retention: 69.7 }, All: { target: 88.12, retention: 21.6 }, Linear: { target: 80.55, retention: 76.0 } },
  "CIFAR-10": { Block: { target: 98.51, retention: 75.2 }, LoRA: { target: 98.39, retention: 18.5 }, All: { target: 98.25, retention: 31.6 }, Linear: { target: 94.31, retention: 76.0 } },
  DTD: { Block: { target: 70.7, retention: 75.2 }, LoRA: { target: 70.17, retention: 64.5 }, All: { target: 66.8, retention: 54.7 }, Linear: { target: 69.9, retention: 76.0 } },
  "Food-101": { Block: { target: 87.22, retention: 73.6 }, LoRA: { target: 85.85, retention: 59.8 }, All: { target: 86.33, retention: 46.8 }, Linear: { target: 79.88, retention: 76.0 } },
  "Flowers-102": { Block: { target: 94.61, retention: 75.4 }, LoRA: { target: 94.8, retention: 69.3 }, All: { target: 93.92, retention: 60.5 }, Linear: { target: 93.64, retention: 76.0 } },
};

/** The headline: full fine-tuning loses over 70% of its IN-1k k-NN accuracy after 10 iterations. */
export const HEADLINE = { iterations: 10, relativeLoss: 0.7 };
