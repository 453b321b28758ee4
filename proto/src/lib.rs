//! Generated wire types. `thanos` holds the StoreAPI (`thanos.Store`) and
//! `thanos::info` the Info service; `prometheus` holds remote read (prompb);
//! `skein::gossip::v1` holds Skein's WAN gossip service.
#![allow(clippy::all, clippy::pedantic)]

pub mod thanos {
    tonic::include_proto!("thanos");

    pub mod info {
        tonic::include_proto!("thanos.info");
    }
}

pub mod prometheus {
    tonic::include_proto!("prometheus");
}

pub mod skein {
    pub mod gossip {
        pub mod v1 {
            tonic::include_proto!("skein.gossip.v1");
        }
    }
}
