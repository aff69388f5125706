from glid_tools.stack_demo import last_metrics


def test_last_metrics_picks_the_evaluation_record():
    records = [
        dict(lr=0.1, loss=1.0, loss_cls=1.0, time=0.3, step=1),
        dict(aAcc=20.0, mIoU=8.5, data_time=0.1, time=0.2, step=2),
        dict(lr=0.1, loss=0.9, loss_cls=0.9, time=0.3, step=3),
        dict(**{'coco/bbox_mAP': 0.0}, step=3),
    ]
    assert last_metrics(records) == {'coco/bbox_mAP': 0.0}
    assert last_metrics(records[:2]) == {'aAcc': 20.0, 'mIoU': 8.5}
    assert last_metrics(records[:1]) == {}
