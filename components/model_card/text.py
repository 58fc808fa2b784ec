"""The model card's prose: what does not come from the run's artifacts.

Both templates (Markdown and HTML) lay these out; the numbers around them
come from the run (card.py). The dataset's provenance and licence are as
the repository states them (README.md, /work/shared/data/README.md).
"""
from components.model_card import intervals

TITLE = 'Model card'

PROVENANCE = (
    'Reference dataset: Kermany et al. 2018, "Chest X-Ray Images '
    '(Pneumonia)", as distributed on Kaggle '
    '(paultimothymooney/chest-xray-pneumonia); original release: Mendeley '
    'Data, doi:10.17632/rscbjbr9sj.2, licence CC BY 4.0 (attribution '
    'required).',
    'The pipeline is built for that dataset. The card cannot tell from the '
    'artifacts that this run ingested it: if the images came from another '
    'source, its provenance and licence apply instead and must be added by '
    'whoever supplied them.',
    'Images are split by patient (no child in two splits; the patient is '
    'read from the file name), byte-identical files are kept once, and '
    'files that are not decodable images are rejected with a reason.',
)

INTENDED_USE = (
    'Decision support for trained readers (radiologists, pediatricians, '
    'emergency physicians) of frontal pediatric chest X-rays: the model '
    'gives a probability of pneumonia (bacterial or viral) and a flag at '
    'the operating threshold, e.g. to prioritise a reading list or as a '
    'second look.',
    'It is not a diagnosis and must not be used without a clinician '
    'reading the image: a NORMAL flag does not rule pneumonia out, and a '
    'PNEUMONIA flag does not say which kind or how severe.',
    'Intended users: clinicians trained to read chest X-rays, and the ML '
    'engineers who retrain, evaluate and deploy the model.',
    'Out of scope: adults, lateral views, other findings or diseases '
    '(tuberculosis, COVID-19, effusions, tubes and lines), screening of '
    'populations without a reader, and any use on images unlike the '
    'training data (see Limitations).',
)

LIMITATIONS = (
    'Single-site pediatric data: the reference dataset comes from one '
    "hospital's pediatric patients; other hospitals, scanners, protocols "
    'and patient populations may differ (an external cohort, when given, '
    'measures some of this).',
    'No adult X-rays: the model has never seen an adult chest.',
    'No lateral views: frontal (PA/AP) images only.',
    'JPEG-only source: the images were exported as 8-bit JPEG; DICOM '
    'files, their bit depth and windowing, and other compression were not '
    'part of training or evaluation.',
    'Subgroups such as age, sex, device or ward are not recorded, so '
    'performance across them is unknown.',
    'Confidence intervals resample images, not patients: a child with '
    'several images makes them somewhat too narrow, and slices of a few '
    'images have unreliable intervals (n is given with each).',
)

# One of these follows LIMITATIONS, by model_info.json's `calibration`.
UNCALIBRATED = (
    'Calibration: the probability is the network output, not calibrated; '
    'the share of pneumonia in the data (see Data) is far above what most '
    'clinics see, so precision (positive predictive value) will be lower '
    'where pneumonia is rarer.')
CALIBRATED = (
    'Calibration: the probability was recalibrated on the eval split '
    '({method}); it reads as a risk at that split\'s share of pneumonia '
    '(see Data), not at another site\'s, and precision (positive '
    'predictive value) will be lower where pneumonia is rarer.')

ETHICS = (
    'A missed pneumonia (false negative) can delay treatment; the '
    'threshold is chosen for a target sensitivity, and the reader stays '
    'responsible for every image. False positives can lead to unneeded '
    'antibiotics or further imaging.',
    'Patients are children: the images and any identifiers derived from '
    'file names must be handled under the site\'s data-protection rules; '
    'the pipeline keeps only a patient id parsed from the file name.',
    'Fairness across patient groups cannot be assessed from this data (no '
    'demographic labels); a site deploying the model should audit it on '
    'its own population before and during use.',
    'The dataset is used under its licence (CC BY 4.0): derived works must '
    'credit Kermany et al.',
    'Performance can drift as scanners, protocols or the patient mix '
    'change: re-evaluate on recent local images before relying on the '
    'numbers here.',
)

METHOD = (
    f'Point values are TFMA\'s, as in the evaluation artifact. Intervals: '
    f'{intervals.LEVEL * 100:.0f} % percentile bootstrap, {intervals.RESAMPLES:,} '
    f'resamples of each slice\'s images with replacement (seed '
    f'{intervals.SEED}), from TFMA\'s own summaries: sensitivity, '
    f'specificity, precision and accuracy from the confusion matrix at the '
    f'operating threshold (exact), the AUC from the calibration histogram '
    f'(score bins of 0.001, ties within a bin counted half). Single-class '
    f'slices have no AUC; a rate of 0 or 1 gets an interval of zero width '
    f'(the resamples cannot hold errors the slice did not make).')
