"""PyTorch modules with torchvision's ResNet and VGG layouts, for the zoo tests.

torchvision has no CPU wheel on the test machines, so these are written here
from torchvision's documented architecture: the same submodule names (and so
the same `state_dict` keys and shapes) and the same forward pass. Imported
only by tests that have torch.
"""
import torch
from torch import nn


class BasicBlock(nn.Module):
  expansion = 1

  def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1,
               width_per_group=64):
    super().__init__()
    del groups, width_per_group
    self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
    self.bn1 = nn.BatchNorm2d(planes)
    self.relu = nn.ReLU(inplace=True)
    self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
    self.bn2 = nn.BatchNorm2d(planes)
    self.downsample = downsample

  def forward(self, x):
    identity = x if self.downsample is None else self.downsample(x)
    out = self.relu(self.bn1(self.conv1(x)))
    out = self.bn2(self.conv2(out))
    return self.relu(out + identity)


class Bottleneck(nn.Module):
  expansion = 4

  def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1,
               width_per_group=64):
    super().__init__()
    width = int(planes * (width_per_group / 64.0)) * groups
    self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
    self.bn1 = nn.BatchNorm2d(width)
    self.conv2 = nn.Conv2d(width, width, 3, stride, 1, groups=groups,
                           bias=False)
    self.bn2 = nn.BatchNorm2d(width)
    self.conv3 = nn.Conv2d(width, planes * 4, 1, bias=False)
    self.bn3 = nn.BatchNorm2d(planes * 4)
    self.relu = nn.ReLU(inplace=True)
    self.downsample = downsample

  def forward(self, x):
    identity = x if self.downsample is None else self.downsample(x)
    out = self.relu(self.bn1(self.conv1(x)))
    out = self.relu(self.bn2(self.conv2(out)))
    out = self.bn3(self.conv3(out))
    return self.relu(out + identity)


class ResNet(nn.Module):

  def __init__(self, block, layers, num_classes=1000, groups=1,
               width_per_group=64):
    super().__init__()
    self.inplanes = 64
    self.groups, self.width_per_group = groups, width_per_group
    self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
    self.bn1 = nn.BatchNorm2d(64)
    self.relu = nn.ReLU(inplace=True)
    self.maxpool = nn.MaxPool2d(3, 2, 1)
    self.layer1 = self._make_layer(block, 64, layers[0], 1)
    self.layer2 = self._make_layer(block, 128, layers[1], 2)
    self.layer3 = self._make_layer(block, 256, layers[2], 2)
    self.layer4 = self._make_layer(block, 512, layers[3], 2)
    self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
    self.fc = nn.Linear(512 * block.expansion, num_classes)

  def _make_layer(self, block, planes, blocks, stride):
    downsample = None
    if stride != 1 or self.inplanes != planes * block.expansion:
      downsample = nn.Sequential(
          nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride,
                    bias=False),
          nn.BatchNorm2d(planes * block.expansion))
    layers = [block(self.inplanes, planes, stride, downsample, self.groups,
                    self.width_per_group)]
    self.inplanes = planes * block.expansion
    for _ in range(1, blocks):
      layers.append(block(self.inplanes, planes, groups=self.groups,
                          width_per_group=self.width_per_group))
    return nn.Sequential(*layers)

  def forward(self, x):
    x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
    x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
    return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet18(**kw):
  return ResNet(BasicBlock, [2, 2, 2, 2], **kw)


def resnet50(**kw):
  return ResNet(Bottleneck, [3, 4, 6, 3], **kw)


def wide_resnet50_2(**kw):
  return ResNet(Bottleneck, [3, 4, 6, 3], width_per_group=128, **kw)


_CFG11 = [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]


class VGG(nn.Module):

  def __init__(self, cfg, batch_norm=False, num_classes=1000, dropout=0.5):
    super().__init__()
    layers, c = [], 3
    for v in cfg:
      if v == "M":
        layers.append(nn.MaxPool2d(2, 2))
        continue
      layers.append(nn.Conv2d(c, v, 3, padding=1))
      if batch_norm:
        layers.append(nn.BatchNorm2d(v))
      layers.append(nn.ReLU(inplace=True))
      c = v
    self.features = nn.Sequential(*layers)
    self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
    self.classifier = nn.Sequential(
        nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(dropout),
        nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(dropout),
        nn.Linear(4096, num_classes))

  def forward(self, x):
    x = self.avgpool(self.features(x))
    return self.classifier(torch.flatten(x, 1))


def vgg11(**kw):
  return VGG(_CFG11, False, **kw)


def vgg11_bn(**kw):
  return VGG(_CFG11, True, **kw)
