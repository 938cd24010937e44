"""The papers' training recipes per dataset, shared by the benchmark configs
that train the same models (`benchmarks.madry`, `benchmarks.autoattack`):
architecture, epochs, batch, optimizer and schedule, the Linf radius and the
PGD of training and of evaluation.

MNIST: Madry et al. 2018 (eps 0.3, PGD-40 step 0.01, Adam 1e-4, Madry's
CNN); CIFAR-10: Madry et al. / Rice et al. 2020 (eps 8/255, PGD-7 step
2/255, PreAct ResNet-18, SGD 0.1 piecewise, weight decay 5e-4); digits: the
embedded 8x8 data in about a minute on 2 CPU cores.
"""

__all__ = ["MADRY"]

_MNIST = dict(model="madry_mnist", epochs=100, batch_size=50, eps=0.3,
              train_steps=40, train_step_size=0.01, eval_steps=100,
              eval_restarts=10, optimizer="adam", learning_rate=1e-4,
              weight_decay=0., schedule="constant")
_CIFAR = dict(model="preact_resnet18", epochs=100, batch_size=128,
              eps=8 / 255, train_steps=7, train_step_size=2 / 255,
              eval_steps=20, eval_restarts=5, optimizer="sgd",
              learning_rate=0.1, weight_decay=5e-4, schedule="piecewise")
MADRY = {
    "digits": dict(model="wong_mnist", epochs=100, batch_size=64, eps=0.2,
                   train_steps=10, train_step_size=0.05, eval_steps=20,
                   eval_restarts=4, optimizer="adam", learning_rate=5e-3,
                   weight_decay=0., schedule="cosine"),
    "synthetic": dict(model="wong_mnist", epochs=2, batch_size=32, eps=0.1,
                      train_steps=3, train_step_size=0.05, eval_steps=5,
                      eval_restarts=1, optimizer="adam", learning_rate=2e-3,
                      weight_decay=0., schedule="constant"),
    "mnist": _MNIST,
    "fashion_mnist": {**_MNIST, "eps": 0.1, "train_step_size": 0.01},
    "cifar10": _CIFAR,
    "cifar100": _CIFAR,
    "svhn_cropped": {**_CIFAR, "learning_rate": 0.01, "epochs": 40},
}
